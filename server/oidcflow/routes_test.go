package oidcflow_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/server/oidcflow"
	"github.com/qrauth/qrauth/store"
)

// recorder is the provider as a flow, noting the routes its Mount adds.
type recorder struct {
	*oidcflow.Flow
	added []string
}

func (r *recorder) Mount(h server.Host, e *echo.Echo) error {
	before := map[string]bool{}
	for _, rt := range e.Routes() {
		before[rt.Method+" "+rt.Path] = true
	}
	if err := r.Flow.Mount(h, e); err != nil {
		return err
	}
	for _, rt := range e.Routes() {
		if k := rt.Method + " " + rt.Path; !before[k] {
			r.added = append(r.added, k)
		}
	}
	return nil
}

// oidcDocRoute matches a row of the provider's table in docs/protocol.md
// §11.6: "| `METHOD /path` | …".
var oidcDocRoute = regexp.MustCompile("(?m)^\\| `(GET|POST|PUT|PATCH|DELETE|HEAD) (/[^`\\s]*)` \\|")

// TestRoutesMatchProtocolDoc: the provider's table in docs/protocol.md
// §11.6 lists every route the provider registers, and only those.
func TestRoutesMatchProtocolDoc(t *testing.T) {
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec := &recorder{Flow: oidcflow.New(oidcflow.Config{}, db)}
	cfg := server.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MasterKey: bytes.Repeat([]byte{7}, 32)}
	s, err := server.New(cfg, db, rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	slices.Sort(rec.added)
	if len(rec.added) < 10 {
		t.Fatalf("the provider registered only %v", rec.added)
	}

	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(doc), "#### The OpenID Connect provider")
	if i < 0 {
		t.Fatal(`docs/protocol.md has no "#### The OpenID Connect provider" section`)
	}
	section := string(doc[i:])
	if j := strings.Index(section, "\n---"); j >= 0 {
		section = section[:j]
	}
	var documented []string
	for _, m := range oidcDocRoute.FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1]+" "+m[2])
	}
	slices.Sort(documented)
	for _, r := range rec.added {
		if !slices.Contains(documented, r) {
			t.Errorf("registered but not in docs/protocol.md §11.6: %s", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(rec.added, r) {
			t.Errorf("in docs/protocol.md §11.6 but not registered: %s", r)
		}
	}
}
