package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/pgtest"
	"github.com/qrauth/qrauth/internal/redistest"
	"github.com/qrauth/qrauth/store"
)

// TestMain lets the test binary stand in for qrauth-bench when a hold run
// starts its client processes (os.Executable is the test binary then).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "hold-worker" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	code := m.Run()
	pgtest.StopShared()
	redistest.StopShared()
	os.Exit(code)
}

// mustRun runs the command with --json and decodes its report.
func mustRun(t *testing.T, args ...string) *Report {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append(args, "--json", "--quiet")
	if code := run(ctx, args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("qrauth-bench %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout.String())
	}
	return &rep
}

func checkHold(t *testing.T, h *HoldResult, rooms int) {
	t.Helper()
	if h == nil {
		t.Fatal("no hold result")
	}
	if h.Opened != int64(rooms) || h.Failed != 0 || h.NotAttempted != 0 || h.Held != int64(rooms) || h.Dropped != 0 {
		t.Fatalf("hold: opened %d failed %d not attempted %d held %d dropped %d, want all %d held; errors %v",
			h.Opened, h.Failed, h.NotAttempted, h.Held, h.Dropped, rooms, h.ErrorExamples)
	}
	if h.Opened+h.Failed+h.NotAttempted != int64(h.Rooms) || h.Held+h.Dropped != h.Opened {
		t.Fatalf("hold counts do not add up: %+v", h)
	}
	if h.RoomsRotated != int64(rooms) || h.Rotations < int64(rooms) {
		t.Fatalf("rotations %d, rooms rotated at the sample %d; want every room to get a new code", h.Rotations, h.RoomsRotated)
	}
	if len(h.Errors) != 0 {
		t.Fatalf("hold errors: %v", h.ErrorExamples)
	}
	var atSample int64
	for _, s := range h.Servers {
		if s.Loaded.RSSKiB <= 0 {
			t.Fatalf("no memory sample of %s: %+v", s.URL, s)
		}
		atSample += s.RoomsAtSample
	}
	if atSample != int64(rooms) {
		t.Fatalf("%d rooms at the sample, want %d: %+v", atSample, rooms, h.Servers)
	}
}

// TestHold holds a few rooms in an in-process server through several PSK
// rotations, with the connections in two client processes.
func TestHold(t *testing.T) {
	t.Parallel()
	rep := mustRun(t, "hold", "--rooms", "5", "--duration", "1s", "--psk-rotation", "200ms", "--clients", "2", "--baseline=false")
	checkHold(t, rep.Hold, 5)
	if rep.Hold.ClientRSSKiB <= 0 {
		t.Fatalf("client processes reported no memory")
	}
}

// TestHoldInProcessClients keeps the connections in goroutines of this
// process (--clients 0).
func TestHoldInProcessClients(t *testing.T) {
	t.Parallel()
	rep := mustRun(t, "hold", "--rooms", "4", "--duration", "1s", "--psk-rotation", "200ms", "--clients", "0", "--baseline=false")
	checkHold(t, rep.Hold, 4)
}

// TestHoldExternal drives a server this harness did not start, as it would
// drive qrauthd, spread over two servers.
func TestHoldExternal(t *testing.T) {
	t.Parallel()
	var urls []string
	for range 2 {
		o := &options{pskRotation: 200 * time.Millisecond, maxRooms: 100}
		s, err := startInproc(o, "127.0.0.1:0", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.close() })
		urls = append(urls, "http://"+s.srv.Addr().String())
	}
	pid := strconv.Itoa(os.Getpid())
	rep := mustRun(t, "hold", "--server", strings.Join(urls, ","), "--server-pid", pid+","+pid,
		"--rooms", "6", "--duration", "1s", "--clients", "2", "--baseline=false")
	checkHold(t, rep.Hold, 6)
	for _, s := range rep.Hold.Servers {
		if s.RoomsAtSample != 3 || s.PID != os.Getpid() {
			t.Fatalf("server %s: %d rooms at the sample, pid %d; want 3 rooms each", s.URL, s.RoomsAtSample, s.PID)
		}
	}
}

// TestLoginCluster runs sign-ins on two in-process instances over one
// PostgreSQL and one Redis: every browser on the first, every phone on the
// second, and every session in the shared store afterwards.
func TestLoginCluster(t *testing.T) {
	t.Parallel()
	pg, rs := pgtest.Shared(t), redistest.Shared(t)
	rep := mustRun(t, "login", "--devices", "3", "--count", "10", "--rate", "50", "--duration", "10s",
		"--store", pg.Schema(t), "--redis", rs.URL, "--instances", "2", "--baseline=false")
	l := rep.Login
	if l == nil {
		t.Fatal("no login result")
	}
	if l.Registered != 3 || l.Completed != 10 || l.Failed != 0 || len(l.Errors) != 0 {
		t.Fatalf("registered %d, completed %d, failed %d, errors %v %v", l.Registered, l.Completed, l.Failed, l.RegisterErrors, l.ErrorExamples)
	}
	if l.SessionsInStore != 13 {
		t.Fatalf("sessions in store %d, want 13", l.SessionsInStore)
	}
	if !slices.ContainsFunc(l.Notes, func(n string) bool { return strings.HasPrefix(n, "cluster: browsers on ") }) {
		t.Fatalf("notes %q: the run did not span two instances", l.Notes)
	}
}

func TestClusterFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--redis", "redis://127.0.0.1:1/0"},
		{"--store", "postgres://db.example.com/x"},
		{"--store", "postgres://127.0.0.1/x", "--redis", "redis://10.0.0.1:6379/0"},
		{"--store", "postgres://127.0.0.1/x", "--instances", "2"},
		{"--instances", "3"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"login"}, args...), strings.NewReader(""), io.Discard, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

// TestLogin registers three phones and runs ten complete sign-ins, then
// reopens the bbolt file and finds every sign-up and session in it.
func TestLogin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rep := mustRun(t, "login", "--devices", "3", "--count", "10", "--rate", "50", "--duration", "10s",
		"--data-dir", dir, "--baseline=false")
	l := rep.Login
	if l == nil {
		t.Fatal("no login result")
	}
	if l.Registered != 3 || len(l.RegisterErrors) != 0 {
		t.Fatalf("registered %d, errors %v", l.Registered, l.RegisterErrors)
	}
	if l.Scheduled != 10 || l.NotStarted != 0 || l.Started != 10 || l.Completed != 10 || l.Failed != 0 || len(l.Errors) != 0 {
		t.Fatalf("sign-ins: scheduled %d not started %d started %d completed %d failed %d errors %v",
			l.Scheduled, l.NotStarted, l.Started, l.Completed, l.Failed, l.ErrorExamples)
	}
	if l.ScanToSignedIn.N != 10 || l.Flow.N != 10 || l.Exchange.N != 10 {
		t.Fatalf("latency samples: %d, %d, %d; want 10", l.ScanToSignedIn.N, l.Flow.N, l.Exchange.N)
	}
	if l.SessionsCreated != 10 || l.SessionsExpected != 13 || l.SessionsInStore != 13 {
		t.Fatalf("sessions: created %d, expected %d, in store %d; want 10, 13, 13", l.SessionsCreated, l.SessionsExpected, l.SessionsInStore)
	}

	// The store, reopened after the server closed it, holds them all.
	db, err := store.Open(filepath.Join(dir, "qrauth.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	events, err := db.ListAudit(ctx, qrauth.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	users := map[qrauth.UserID]bool{}
	for _, e := range events {
		count[e.Type]++
		users[e.UserID] = true
	}
	if count[qrauth.AuditSignUp] != 3 || count[qrauth.AuditSignIn] != 13 || len(users) != 3 {
		t.Fatalf("audit: %v over %d users; want 3 signup and 13 signin events over 3 users", count, len(users))
	}
	sessions := 0
	for id := range users {
		list, err := db.FindSessionsByUser(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sessions += len(list)
	}
	if sessions != 13 {
		t.Fatalf("%d sessions in the store, want 13", sessions)
	}
}

// TestOIDC runs five complete OpenID Connect sign-ins: each reaches a
// verified ID token, each phone's challenge named the site (signInOIDC
// fails the sign-in otherwise), and every session is in the store.
func TestOIDC(t *testing.T) {
	t.Parallel()
	rep := mustRun(t, "oidc", "--devices", "2", "--count", "5", "--rate", "50", "--duration", "10s", "--baseline=false", "--id-token-alg", "EdDSA")
	l := rep.Login
	if l == nil || l.Mode != "oidc" || l.IDTokenAlg != "EdDSA" {
		t.Fatalf("no oidc result: %+v", l)
	}
	if l.Registered != 2 || l.Started != 5 || l.Completed != 5 || l.Failed != 0 || len(l.Errors) != 0 {
		t.Fatalf("sign-ins: registered %d started %d completed %d failed %d errors %v",
			l.Registered, l.Started, l.Completed, l.Failed, l.ErrorExamples)
	}
	if l.Authorize == nil || l.Redirect == nil || l.Token == nil || l.Authorize.N != 5 || l.Token.N != 5 || l.Flow.N != 5 {
		t.Fatalf("latency samples: authorize %+v, token %+v, flow %+v; want 5 each", l.Authorize, l.Token, l.Flow)
	}
	if l.Flow.P50 < l.Token.P50 || l.Flow.P50 < l.ScanToSignedIn.P50 {
		t.Fatalf("the whole flow (p50 %.2f ms) is shorter than a part of it (token %.2f, scan %.2f)", l.Flow.P50, l.Token.P50, l.ScanToSignedIn.P50)
	}
	if l.SessionsExpected != 7 || l.SessionsInStore != 7 {
		t.Fatalf("sessions: expected %d, in store %d; want 7", l.SessionsExpected, l.SessionsInStore)
	}
}

// TestBaseline runs the echo baseline for a moment.
func TestBaseline(t *testing.T) {
	t.Parallel()
	rep := mustRun(t, "baseline", "--baseline-duration", "200ms", "--baseline-conns", "2")
	b := rep.Baseline
	if b == nil || b.RoundTripsPerS <= 0 || b.RoundTrip.N == 0 || b.DialsPerS <= 0 || b.DialErrors != 0 || b.RoundTripErrors != 0 || b.Fdatasync.N == 0 {
		t.Fatalf("baseline: %+v", b)
	}
	if rep.Hold != nil || rep.Login != nil {
		t.Fatal("baseline ran more than the baseline")
	}
}

// TestAll runs everything once in a tiny configuration and prints the table.
func TestAll(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"all", "--rooms", "3", "--clients", "1", "--duration", "1s",
		"--psk-rotation", "200ms", "--devices", "2", "--count", "5", "--rate", "20", "--baseline-duration", "100ms", "--quiet"},
		strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"BASELINE", "HOLD", "LOGIN", "RATIOS TO THE BASELINE", "sign-ins completed / failed", "5 / 0", "rooms held to the end / dropped", "3 / 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestServe runs the benchmark server for a moment and reads its stats.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--debug-addr", "127.0.0.1:0", "--duration", "5s"},
			strings.NewReader(""), io.Discard, &syncWriter{w: &stderr})
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve: exit %d: %s", code, stderr.String())
	}
	if out := stderr.String(); !strings.Contains(out, "serving http://127.0.0.1:") || !strings.Contains(out, "/debug/stats") {
		t.Fatalf("serve said: %s", out)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, args := range [][]string{
		{"hold", "--server", "http://example.com:8080"},
		{"hold", "--server", "http://10.0.0.1:8080"},
		{"login", "--server", "https://127.0.0.1:8443"},
		{"login", "--debug", "http://192.168.1.1:6060", "--server", "http://127.0.0.1:1"},
		{"hold", "--source-ips", "10.0.0.1-10.0.0.3"},
		{"serve", "--addr", "0.0.0.0:8080", "--duration", "1ms"},
		{"oidc", "--server", "http://127.0.0.1:1"}, // it registers its site in its own server's store
		{"oidc", "--id-token-alg", "none"},
		{"nonsense"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), io.Discard, &stderr); code == 0 {
			t.Errorf("%v: exit 0, want a refusal", args)
		}
	}
}

func TestParseIPs(t *testing.T) {
	ips, err := parseIPs("127.0.0.2-127.0.0.4, 127.0.1.1,::1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ip := range ips {
		got = append(got, ip.String())
	}
	if want := "127.0.0.2 127.0.0.3 127.0.0.4 127.0.1.1 ::1"; strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	for _, bad := range []string{"127.0.0.5-127.0.0.4", "127.0.0.1-128.0.0.1", "localhost", "::1-::2"} {
		if _, err := parseIPs(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	l := summarize(d)
	if l.N != 100 || l.P50 != 50 || l.P90 != 90 || l.P99 != 99 || l.Max != 100 || l.Mean != 50.5 {
		t.Fatalf("%+v", l)
	}
	if (summarize(nil) != Latency{}) {
		t.Fatal("empty")
	}
}
