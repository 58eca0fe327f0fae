package server_test

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

	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/store"
)

// docRoute matches a row of a route table in docs/protocol.md:
// "| METHOD | `/path` | …".
var docRoute = regexp.MustCompile("(?m)^\\| (GET|POST|PUT|PATCH|DELETE|HEAD) \\| `([^`]+)` \\|")

// flowDocRoute matches a row of a flow document's call tables:
// "| `METHOD /path…` …".
var flowDocRoute = regexp.MustCompile("(?m)^\\| `(GET|POST|PUT|PATCH|DELETE|HEAD) (/[^`\\s]*)")

// normRoute writes a route as "METHOD /a/:/b": the query and optional parts
// cut, and every parameter (":id", "{id}", "USER") written ":".
func normRoute(method, path string) string {
	if i := strings.IndexAny(path, "?["); i >= 0 {
		path = path[:i]
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") ||
			s != "" && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == "" {
			segs[i] = ":"
		}
	}
	return method + " " + strings.Join(segs, "/")
}

// registeredRoutes starts a server with every flow on (the OATH routes
// exist only then) and returns its router's routes.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig{Config: server.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MasterKey: bytes.Repeat([]byte{7}, 32)}}
	cfg.OfflineOn, cfg.BadgeOn, cfg.OATHOn = true, true, true
	s, err := server.New(cfg.Config, db, testFlows(t, cfg, db)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		db.Close() // the server never closes the store it is given
	})
	var out []string
	for _, r := range s.Routes() {
		out = append(out, normRoute(r.Method, r.Path))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestRouteTablesMatchServer: the route tables of docs/protocol.md (§11.1,
// §11.5, §11.6) list every route the server registers and no other, and
// every call the flow documents describe exists. A client written from the
// docs found them apart once; this keeps them together.
func TestRouteTablesMatchServer(t *testing.T) {
	routes := registeredRoutes(t)
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range docRoute.FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, normRoute(m[1], m[2]))
	}
	slices.Sort(documented)
	if len(documented) < 20 {
		t.Fatalf("found only %d routes in docs/protocol.md: has the table format changed?", len(documented))
	}
	for i := 1; i < len(documented); i++ {
		if documented[i] == documented[i-1] {
			t.Errorf("docs/protocol.md lists %s twice", documented[i])
		}
	}
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("registered but not in docs/protocol.md's route tables: %s", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(routes, r) {
			t.Errorf("in docs/protocol.md's route tables but not registered: %s", r)
		}
	}
	for _, name := range []string{"offline.md", "oath.md", "badge.md", "recovery.md"} {
		b, err := os.ReadFile("../docs/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range flowDocRoute.FindAllStringSubmatch(string(b), -1) {
			if r := normRoute(m[1], m[2]); !slices.Contains(routes, r) {
				t.Errorf("docs/%s describes %s, which is not registered", name, r)
			}
		}
	}
}
