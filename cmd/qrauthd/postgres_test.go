package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/internal/clustertest"
	"github.com/qrauth/qrauth/internal/pgtest"
	"github.com/qrauth/qrauth/internal/redistest"
	"github.com/qrauth/qrauth/store/postgres"
	"github.com/qrauth/qrauth/wire"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	redistest.StopShared()
	clustertest.Cleanup()
	os.Exit(code)
}

// TestPostgresStore: qrauthd with -store on a real PostgreSQL signs a new
// phone up and in again; the account is in PostgreSQL (read back by a
// second connection, as another instance would), /readyz asks the
// database, and the operator's online backup says to use pg_dump.
func TestPostgresStore(t *testing.T) {
	url := pgtest.Shared(t).Schema(t)
	m := MustRunMain(t, "-store", url)
	if m.DB != nil {
		t.Fatal("-store postgres still opened the bbolt file")
	}
	origin := m.Server.Origin()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 555 02 02"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, uid := qrSignIn(t, origin, dev, &qrauth.Profile{Name: "Grace"})
	cookie, _, again := qrSignIn(t, origin, dev, nil)
	if again != uid {
		t.Fatalf("the second sign-in is user %q, the sign-up made %q", again, uid)
	}

	other, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	u, err := other.FindUserByID(ctx, uid)
	if err != nil || u.Name != "Grace" {
		t.Fatalf("user in PostgreSQL: %+v, %v", u, err)
	}
	ss, err := other.FindSessionsByUser(ctx, uid)
	if err != nil || len(ss) != 2 {
		t.Fatalf("sessions in PostgreSQL: %d, %v", len(ss), err)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, origin+wire.PathMe, nil)
	req.Header.Set("Cookie", "qrauth_session="+cookie)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/me with the session: %v %v", resp, err)
	}
	if resp, err := http.Get(origin + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz: %v %v", resp, err)
	}

	var out, errOut bytes.Buffer
	code := runAdmin(ctx, []string{"-socket", m.Config.AdminSocket, "backup", t.TempDir() + "/b.db"}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "pg_dump") {
		t.Fatalf("admin backup on PostgreSQL: exit %d, %q", code, errOut.String())
	}
}

// TestStoreFlagRefused: a -store that names no store qrauthd has, or a
// PostgreSQL that does not answer, stops the start with a clear message
// that never shows the password.
func TestStoreFlagRefused(t *testing.T) {
	m := NewMain()
	err := m.ParseFlags([]string{"-store", "mysql://root:hunter2@127.0.0.1/qrauth"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "postgres://") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("-store mysql://: %v", err)
	}
	m = NewMain()
	if err := m.ParseFlags([]string{"-addr", "127.0.0.1:0", "-data", t.TempDir() + "/q.db",
		"-store", "postgres://qrauth:hunter2@127.0.0.1:1/qrauth?sslmode=disable&connect_timeout=2"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	m.LogOutput = io.Discard
	err = m.Run()
	if err == nil {
		m.Close()
		t.Fatal("qrauthd started with an unreachable PostgreSQL")
	}
	if !strings.Contains(err.Error(), "cannot reach") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("unreachable PostgreSQL: %v", err)
	}
}

// TestAdminMigrate: a bbolt server's accounts move to PostgreSQL with
// `qrauthd admin migrate`, refused while the server runs, and the same
// phone then signs in to the same account on PostgreSQL.
func TestAdminMigrate(t *testing.T) {
	url := pgtest.Shared(t).Schema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := NewMain()
	data := t.TempDir() + "/qrauth.db"
	if err := m.ParseFlags([]string{"-addr", "127.0.0.1:0", "-data", data}, io.Discard); err != nil {
		t.Fatal(err)
	}
	m.LogOutput = io.Discard
	if err := m.Run(); err != nil {
		t.Fatal(err)
	}
	origin := m.Server.Origin()
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 555 03 03"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, uid := qrSignIn(t, origin, dev, &qrauth.Profile{Name: "Ada"})

	migrate := func() (int, string, string) {
		var out, errOut bytes.Buffer
		code := runAdmin(ctx, []string{"migrate", "--from", data, "--to", url}, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, _, errOut := migrate(); code == 0 || !strings.Contains(errOut, "stop the server") {
		t.Fatalf("migrate while serving: exit %d, %q", code, errOut)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := migrate()
	if code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := migrate(); code == 0 || !strings.Contains(errOut, "not empty") {
		t.Fatalf("second migrate into the same database: exit %d, %q", code, errOut)
	}

	// The same address, as an operator moving the service would keep it:
	// the phone knows its server by its origin.
	pg := MustRunMain(t, "-store", url, "-addr", strings.TrimPrefix(origin, "http://"))
	if _, _, again := qrSignIn(t, pg.Server.Origin(), dev, nil); again != uid {
		t.Fatalf("after the migration the phone signs in as %q, want %q", again, uid)
	}
}
