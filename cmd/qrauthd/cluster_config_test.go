package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrauth/qrauth/internal/pgtest"
	"github.com/qrauth/qrauth/internal/redistest"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
)

var redisPrefixes atomic.Int64

// runFailing runs qrauthd as main does, for a start that is to fail: one
// that does not serves for 10 seconds, then exits 0.
func runFailing(t *testing.T, args []string, stdout, stderr io.Writer) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return run(ctx, args, stdout, stderr)
}

// testRedisPrefix is a key prefix of this test's own, so that tests on
// one Redis never see each other's keys.
func testRedisPrefix() string {
	return fmt.Sprintf("qrauthd%d-%d:", os.Getpid(), redisPrefixes.Add(1))
}

// readyz GETs /readyz at origin: its status and reason.
func readyz(t *testing.T, origin string) (int, string) {
	t.Helper()
	resp, err := http.Get(origin + wire.PathReady)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body server.ReadyBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	return resp.StatusCode, body.Reason
}

// waitReadyz polls /readyz until it answers status, or fails the test
// after 30 seconds.
func waitReadyz(t *testing.T, origin string, status int, reason string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, r := readyz(t, origin)
		if st == status && r == reason {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz stayed %d %q, want %d %q", st, r, status, reason)
		}
		time.Sleep(50 * time.Millisecond) // polling for a state, not waiting for it
	}
}

// sharedWrites checks that the Redis qrauthd opened is srv, under prefix:
// an entry put through m.Shared is on the server under that prefix.
func sharedWrites(t *testing.T, m *Main, srv *redistest.Server, prefix string) {
	t.Helper()
	if m.Shared == nil || m.Config.Shared == nil {
		t.Fatal("-redis opened no shared state")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Shared.Put(ctx, "probe", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := redistest.Client(t, srv).Get(ctx, prefix+"val:probe").Result(); err != nil || v != "v" {
		t.Fatalf("the entry on the Redis server under %q = %q, %v", prefix, v, err)
	}
}

// TestClusterReadyz: qrauthd on a real PostgreSQL and a real Redis starts
// and is ready; with Redis stopped /readyz says 503 shared_unavailable
// (and the process stays alive), and once Redis is back it is ready again
// by itself.
func TestClusterReadyz(t *testing.T) {
	pg := pgtest.Shared(t).Schema(t)
	srv := redistest.Own(t)
	prefix := testRedisPrefix()
	m := MustRunMain(t, "-store", pg, "-redis", srv.URL, "-redis-prefix", prefix)
	origin := m.Server.Origin()
	sharedWrites(t, m, srv, prefix)
	if st, r := readyz(t, origin); st != http.StatusOK {
		t.Fatalf("/readyz with PostgreSQL and Redis up = %d %q", st, r)
	}

	srv.Stop()
	waitReadyz(t, origin, http.StatusServiceUnavailable, "shared_unavailable")
	if resp, err := http.Get(origin + wire.PathHealth); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz with Redis down: %v %v", resp, err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, origin, http.StatusOK, "")
}

// TestRedisUnreachable: a -redis that does not answer stops the start at
// once with exit 1 and a message naming the address, never the password
// (in the URL or in QRAUTH_REDIS_PASSWORD), before the database is
// touched (the PostgreSQL here does not exist either).
func TestRedisUnreachable(t *testing.T) {
	clearEnv(t)
	const secret = "hunter2-redis"
	pg := "postgres://qrauth:pg-secret@127.0.0.1:1/qrauth?sslmode=disable"
	for _, tc := range []struct {
		name, url, env string
	}{
		{"PasswordInURL", "redis://qrauth:" + secret + "@127.0.0.1:1/0", ""},
		{"PasswordInEnvironment", "redis://127.0.0.1:1/0", secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(redisPasswordEnv, tc.env)
			}
			var out, errOut bytes.Buffer
			start := time.Now()
			code := runFailing(t, []string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "q.db"),
				"-store", pg, "-redis", tc.url}, &out, &errOut)
			took := time.Since(start)
			msg := errOut.String()
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", code, msg)
			}
			if !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, "-redis") {
				t.Errorf("the message does not name the address and the flag: %q", msg)
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, "pg-secret") {
				t.Errorf("the message shows a password: %q", msg)
			}
			if strings.Contains(msg, "postgres") {
				t.Errorf("the database was tried before Redis: %q", msg)
			}
			if took > 8*time.Second { // well under redisOpenTimeout: refused at once, not timed out
				t.Errorf("the start took %v to fail", took)
			}
		})
	}
}

// TestRedisFlagRefused: settings that cannot work are refused when the
// flags are read, before anything is opened, each with a message that
// says what to do and shows no password.
func TestRedisFlagRefused(t *testing.T) {
	clearEnv(t)
	const secret = "hunter2-redis"
	pg := "postgres://qrauth@127.0.0.1/qrauth"
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"ClusterOnTheFile", []string{"-redis", "redis://:" + secret + "@127.0.0.1:6379/0"}, "", "-store postgres://"},
		{"NotRedis", []string{"-store", pg, "-redis", "http://:" + secret + "@127.0.0.1:6379/0"}, "", "want a redis:// URL"},
		{"Unparsable", []string{"-store", pg, "-redis", "redis://:" + secret + "@127.0.0.1:port/0"}, "", "does not parse"},
		{"CAWithoutTLS", []string{"-store", pg, "-redis", "redis://:" + secret + "@127.0.0.1:6379/0", "-redis-ca", "ca.pem"}, "", "rediss://"},
		{"CAWithoutRedis", []string{"-redis-ca", "ca.pem"}, "", "-redis is not set"},
		{"PasswordTwice", []string{"-store", pg, "-redis", "redis://:" + secret + "@127.0.0.1:6379/0"}, "other-" + secret, "give it once"},
		{"PasswordWithoutRedis", nil, secret, "-redis is not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(redisPasswordEnv, tc.env)
			}
			err := NewMain().ParseFlags(tc.args, io.Discard)
			if err == nil {
				t.Fatalf("%v accepted", tc.args)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	// PostgreSQL alone is one instance, as before: no -redis needed.
	if err := NewMain().ParseFlags([]string{"-store", pg}, io.Discard); err != nil {
		t.Fatalf("-store without -redis: %v", err)
	}
	// `qrauthd config check` refuses a cluster on the file too.
	path := writeConfig(t, "redis = \"redis://127.0.0.1:6379/0\"\n")
	var out, errOut bytes.Buffer
	if code := runConfig([]string{"check", path}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "-store postgres://") {
		t.Fatalf("config check of redis without store: exit %d, %q", code, errOut.String())
	}
}

// TestRedisConfigFile: the file's keys redis and redis-prefix work, and
// QRAUTH_REDIS wins over the file's redis as for every key.
func TestRedisConfigFile(t *testing.T) {
	clearEnv(t)
	pg := pgtest.Shared(t).Schema(t)
	srv := redistest.Shared(t)
	prefix := testRedisPrefix()
	path := writeConfig(t, fmt.Sprintf("store = %q\nredis = %q\nredis-prefix = %q\n", pg, "redis://127.0.0.1:1/0", prefix))
	var out, errOut bytes.Buffer
	if code := runConfig([]string{"check", path}, &out, &errOut); code != 0 {
		t.Fatalf("config check: exit %d, %q", code, errOut.String())
	}
	// The file's Redis does not answer; the environment's does, and wins.
	t.Setenv("QRAUTH_REDIS", srv.URL)
	m := MustRunMain(t, "-config", path)
	if m.RedisURL != srv.URL || m.RedisPrefix != prefix || m.DB != nil {
		t.Fatalf("settings: redis %q prefix %q bbolt %v", m.RedisURL, m.RedisPrefix, m.DB != nil)
	}
	sharedWrites(t, m, srv, prefix)
	if st, r := readyz(t, m.Server.Origin()); st != http.StatusOK {
		t.Fatalf("/readyz = %d %q", st, r)
	}
}

// TestRedisPassword: a Redis that asks for a password is reached with it
// from the URL or from QRAUTH_REDIS_PASSWORD; a wrong one stops the start
// without showing it.
func TestRedisPassword(t *testing.T) {
	clearEnv(t)
	pg := pgtest.Shared(t).Schema(t)
	srv := redistest.Own(t)
	const secret = "s3cret-redis-pa55"
	if err := redistest.Client(t, srv).ConfigSet(context.Background(), "requirepass", secret).Err(); err != nil {
		t.Fatal(err)
	}
	inURL := strings.Replace(srv.URL, "redis://", "redis://:"+secret+"@", 1)
	m := MustRunMain(t, "-store", pg, "-redis", inURL, "-redis-prefix", testRedisPrefix())
	if st, r := readyz(t, m.Server.Origin()); st != http.StatusOK {
		t.Fatalf("password in the URL: /readyz = %d %q", st, r)
	}

	t.Setenv(redisPasswordEnv, secret)
	m = MustRunMain(t, "-store", pg, "-redis", srv.URL, "-redis-prefix", testRedisPrefix())
	if st, r := readyz(t, m.Server.Origin()); st != http.StatusOK {
		t.Fatalf("password in %s: /readyz = %d %q", redisPasswordEnv, st, r)
	}

	t.Setenv(redisPasswordEnv, "wrong-"+secret)
	var out, errOut bytes.Buffer
	code := runFailing(t, []string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "q.db"),
		"-store", pg, "-redis", srv.URL}, &out, &errOut)
	if msg := errOut.String(); code != 1 || !strings.Contains(msg, srv.Addr) || strings.Contains(msg, secret) {
		t.Fatalf("wrong password: exit %d, %q", code, msg)
	}
}

// TestRedisTLS: rediss:// with -redis-ca speaks TLS to a server whose
// certificate that CA signed; without -redis-ca the system roots do not
// know the test CA and the start fails, naming the certificate.
func TestRedisTLS(t *testing.T) {
	clearEnv(t)
	pg := pgtest.Shared(t).Schema(t)
	ca := testutil.NewTestCA(t)
	cert, key := ca.Leaf(t, 10, "127.0.0.1")
	srv := redistest.OwnTLS(t, cert, key)
	caFile := filepath.Join(t.TempDir(), "redis-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	prefix := testRedisPrefix()
	m := MustRunMain(t, "-store", pg, "-redis", srv.TLSURL, "-redis-ca", caFile, "-redis-prefix", prefix)
	sharedWrites(t, m, srv, prefix) // over TLS, read back on the plain port
	if st, r := readyz(t, m.Server.Origin()); st != http.StatusOK {
		t.Fatalf("/readyz over TLS = %d %q", st, r)
	}

	var out, errOut bytes.Buffer
	code := runFailing(t, []string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "q.db"),
		"-store", pg, "-redis", srv.TLSURL + "?max_retries=-1"}, &out, &errOut)
	if msg := errOut.String(); code != 1 || !strings.Contains(msg, "certificate") {
		t.Fatalf("rediss:// to an unknown CA without -redis-ca: exit %d, %q", code, msg)
	}
	if err := NewMain().ParseFlags([]string{"-store", pg, "-redis", srv.TLSURL, "-redis-ca", filepath.Join(t.TempDir(), "none.pem")}, io.Discard); err != nil {
		t.Fatal(err) // the file is read at start, not when the flags are
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	errOut.Reset()
	code = runFailing(t, []string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "q.db"),
		"-store", pg, "-redis", srv.TLSURL, "-redis-ca", bad}, &out, &errOut)
	if msg := errOut.String(); code != 1 || !strings.Contains(msg, "no PEM certificate") {
		t.Fatalf("-redis-ca with no certificate: exit %d, %q", code, msg)
	}
}

// TestClusterConfigExampleChecks: the config file of docs/cluster.md's
// two-instance example passes `qrauthd config check`.
func TestClusterConfigExampleChecks(t *testing.T) {
	clearEnv(t)
	b, err := os.ReadFile("../../docs/cluster.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Configuration\n")
	_, block, ok2 := strings.Cut(sec, "\n```toml\n")
	block, _, ok3 := strings.Cut(block, "\n```\n")
	if !ok || !ok2 || !ok3 {
		t.Fatal("docs/cluster.md has no toml example under ## Configuration")
	}
	var out, errOut bytes.Buffer
	if code := runConfig([]string{"check", writeConfig(t, block)}, &out, &errOut); code != 0 {
		t.Fatalf("config check of the example: exit %d, %s", code, errOut.String())
	}
}
