package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/shared"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/wire"
)

// getHealth GETs url and returns the status and the decoded body.
func getHealth(t *testing.T, url string) (int, server.ReadyBody) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body server.ReadyBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, body
}

func TestHealth(t *testing.T) {
	srv := MustOpenServer(t, nil)
	other := httptest.NewServer(srv.HealthHandler())
	defer other.Close()
	for _, base := range []string{srv.URL, other.URL} {
		if st, body := getHealth(t, base+wire.PathHealth); st != http.StatusOK || body != (server.ReadyBody{Status: "ok"}) {
			t.Errorf("%s%s = %d %+v, want 200 ok", base, wire.PathHealth, st, body)
		}
		if st, body := getHealth(t, base+wire.PathReady); st != http.StatusOK || body != (server.ReadyBody{Status: "ok"}) {
			t.Errorf("%s%s = %d %+v, want 200 ok", base, wire.PathReady, st, body)
		}
	}
}

// holdFlow is a flow whose Shutdown waits for the test: it holds the
// server in the first step of its shutdown, while both listeners serve.
type holdFlow struct {
	entered, release chan struct{}
}

func (holdFlow) Name() string                        { return "hold" }
func (holdFlow) Mount(server.Host, *echo.Echo) error { return nil }
func (holdFlow) Gate(context.Context, *qrauth.User, *server.SignIn) (server.Step, error) {
	return server.Step{}, nil
}
func (holdFlow) AdminUser(context.Context, *qrauth.User, map[string]any) error { return nil }
func (holdFlow) Purge(context.Context, time.Time)                              {}
func (f holdFlow) Shutdown() {
	close(f.entered)
	<-f.release
}

func TestReadyzDuringShutdown(t *testing.T) {
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hold := holdFlow{entered: make(chan struct{}), release: make(chan struct{})}
	s, err := server.New(server.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, db, hold)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	metrics := httptest.NewServer(s.HealthHandler())
	defer metrics.Close()
	for _, base := range []string{s.Origin(), metrics.URL} {
		if st, _ := getHealth(t, base+wire.PathReady); st != http.StatusOK {
			t.Fatalf("%s before shutdown: %d, want 200", base, st)
		}
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	select {
	case <-hold.entered:
	case <-time.After(10 * time.Second):
		close(hold.release)
		t.Fatal("Shutdown never reached the flows")
	}
	want := server.ReadyBody{Status: "unavailable", Reason: "shutting_down"}
	for _, base := range []string{s.Origin(), metrics.URL} {
		if st, body := getHealth(t, base+wire.PathReady); st != http.StatusServiceUnavailable || body != want {
			t.Errorf("%s%s during shutdown = %d %+v, want 503 %+v", base, wire.PathReady, st, body, want)
		}
		// Alive all the same: the process is not to be restarted for it.
		if st, _ := getHealth(t, base+wire.PathHealth); st != http.StatusOK {
			t.Errorf("%s%s during shutdown = %d, want 200", base, wire.PathHealth, st)
		}
	}
	close(hold.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The operator's listener outlives the public one and still says so.
	if st, body := getHealth(t, metrics.URL+wire.PathReady); st != http.StatusServiceUnavailable || body != want {
		t.Errorf("after shutdown = %d %+v, want 503 %+v", st, body, want)
	}
}

func TestReadyzStoreClosed(t *testing.T) {
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	want := server.ReadyBody{Status: "unavailable", Reason: "store_unavailable"}
	if st, body := getHealth(t, s.Origin()+wire.PathReady); st != http.StatusServiceUnavailable || body != want {
		t.Errorf("readyz with the store closed = %d %+v, want 503 %+v", st, body, want)
	}
}

// TestReadyzSharedUnavailable: with shared state (a cluster's Redis) that
// does not answer, /readyz is 503 "shared_unavailable" on both listeners,
// so that the load balancer sends people to another instance; the store
// alone answering is not enough.
func TestReadyzSharedUnavailable(t *testing.T) {
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sh := shared.NewMemory(nil)
	defer sh.Close()
	s, err := server.New(server.Config{Addr: "127.0.0.1:0", Shared: sh, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	metrics := httptest.NewServer(s.HealthHandler())
	defer metrics.Close()
	for _, base := range []string{s.Origin(), metrics.URL} {
		if st, body := getHealth(t, base+wire.PathReady); st != http.StatusOK || body != (server.ReadyBody{Status: "ok"}) {
			t.Fatalf("%s%s with the shared state up = %d %+v, want 200 ok", base, wire.PathReady, st, body)
		}
	}
	if err := sh.Close(); err != nil {
		t.Fatal(err)
	}
	want := server.ReadyBody{Status: "unavailable", Reason: "shared_unavailable"}
	for _, base := range []string{s.Origin(), metrics.URL} {
		if st, body := getHealth(t, base+wire.PathReady); st != http.StatusServiceUnavailable || body != want {
			t.Errorf("%s%s with the shared state closed = %d %+v, want 503 %+v", base, wire.PathReady, st, body, want)
		}
		// Alive all the same: restarting this process would not bring Redis back.
		if st, _ := getHealth(t, base+wire.PathHealth); st != http.StatusOK {
			t.Errorf("%s%s with the shared state closed = %d, want 200", base, wire.PathHealth, st)
		}
	}
}
