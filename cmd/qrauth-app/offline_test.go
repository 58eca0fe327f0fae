package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/offline"
	qrserver "github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/server/offlineflow"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/wire"
)

const offlineToken = "cli-test-relying-site-token-0123456789abcdef"

// offlineServer runs the real server with offline codes on, over a bbolt
// file that outlives it, so that a test can stop it and start it again.
type offlineServer struct {
	t      *testing.T
	dbPath string
	key    []byte
	srv    *qrserver.Server
	db     *store.DB
	URL    string
}

func startOfflineServer(t *testing.T, dbPath string, key []byte) *offlineServer {
	t.Helper()
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := qrserver.Config{Addr: "127.0.0.1:0", MasterKey: key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	off, err := offlineflow.New(offlineflow.Config{APITokens: []string{offlineToken}}, db, key)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := qrserver.New(cfg, db, off)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	s := &offlineServer{t: t, dbPath: dbPath, key: key, srv: srv, db: db, URL: srv.Origin()}
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *offlineServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.t.Errorf("shutdown: %v", err)
	}
	// The server never closes the store it is given; a restart reopens the file.
	if err := s.db.Close(); err != nil {
		s.t.Errorf("close store: %v", err)
	}
}

func (s *offlineServer) api(method, path string, body any) map[string]any {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.URL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+offlineToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode >= 300 {
		s.t.Fatalf("%s %s: %d %v %v", method, path, resp.StatusCode, m, err)
	}
	return m
}

// loginURL opens a browser socket and returns the URL its QR code shows.
func (s *offlineServer) loginURL() (string, func()) {
	s.t.Helper()
	h := http.Header{"Origin": {s.URL}, "Cookie": {"qrauth_bind=" + issuedBind(s.t, s.URL)}}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+wire.PathBrowserSocket, h)
	if err != nil {
		s.t.Fatal(err)
	}
	var qr wire.ServerMessage
	if err := ws.ReadJSON(&qr); err != nil {
		s.t.Fatal(err)
	}
	return qr.URL, func() { ws.Close() }
}

func writePNG(t *testing.T, dataURL string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "code.png")
	if err := os.WriteFile(path, testutil.DataURLPNG(t, dataURL), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var codeRe = regexp.MustCompile(`(?m)^Code: ([0-9]+)$`)

// TestRunOffline: activate while online, then answer a challenge with the
// server stopped and no device state at all, only the offline keys; the
// code verifies once the server is back.
func TestRunOffline(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{9}, 32)
	srv := startOfflineServer(t, filepath.Join(dir, "qrauth.db"), key)
	state := filepath.Join(dir, "phone", "device.json")
	if r := runApp(t, "", "init", "--server", srv.URL, "--phone", "+41 79 123 45 67", "--name", "Pixel 8", "--state", state); r.code != exitOK {
		t.Fatalf("init: %+v", r)
	}
	url, closeBrowser := srv.loginURL()
	if r := runApp(t, "", "scan", url, "--approve", "--name", "Ada", "--email", "ada@example.com", "--state", state); r.code != exitOK {
		t.Fatalf("sign-up: %+v", r)
	}
	closeBrowser()

	if r := runApp(t, "", "offline", "1D6AAAAAAAAAAAx", "--state", state); r.code != exitError || !strings.Contains(r.stderr, "no_offline_key") {
		t.Fatalf("offline before activation: %+v", r)
	}
	if r := runApp(t, "", "activate", "offline-pin", "--pin", "12", "--state", state); r.code != exitError || !strings.Contains(r.stderr, "invalid_pin") {
		t.Fatalf("short PIN: %+v", r)
	}
	if r := runApp(t, "", "activate", "offline-device", "--state", state); r.code != exitOK {
		t.Fatalf("activate device: %+v", r)
	}
	// The PIN may come from the prompt.
	if r := runApp(t, "2468\n", "activate", "offline-pin", "--state", state); r.code != exitOK || !strings.Contains(r.stdout, "OFFLINE_PIN is on") {
		t.Fatalf("activate pin: %+v", r)
	}
	keysFile := appclient.OfflineKeysPath(state)
	if fi, err := os.Stat(keysFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys file %v %v", fi, err)
	}

	ctxText := "Pay CHF 42.00 to Muster AG\nRef 2025-06"
	sessPIN := srv.api("POST", wire.PathOfflineSessions, map[string]any{"email": "ada@example.com", "method": "OFFLINE_PIN", "context": ctxText})
	sessDev := srv.api("POST", wire.PathOfflineSessions, map[string]any{"email": "ada@example.com", "method": "OFFLINE_DEVICE", "context": "Sign in"})
	png := writePNG(t, sessPIN["qr"].(string))

	// No network: the server is gone, and the phone is given no device
	// state (so no server address), only its offline keys.
	srv.stop()
	onlyKeys := filepath.Join(t.TempDir(), "keys.json")
	data, _ := os.ReadFile(keysFile)
	os.WriteFile(onlyKeys, data, 0o600)
	noState := filepath.Join(t.TempDir(), "none", "device.json")

	r := runApp(t, "", "offline", png, "--pin", "2468", "--keys", onlyKeys, "--state", noState)
	m := codeRe.FindStringSubmatch(r.stdout)
	if r.code != exitOK || m == nil || !strings.Contains(r.stdout, "Pay CHF 42.00 to Muster AG") || !strings.Contains(r.stdout, "Ref 2025-06") ||
		!strings.Contains(r.stdout, "OFFLINE_PIN") {
		t.Fatalf("offline (picture): %+v", r)
	}
	pinCode := m[1]
	// The text instead of a picture; the PIN from the prompt.
	r = runApp(t, "2468\n", "offline", sessPIN["verification_data"].(string), "--keys", onlyKeys, "--state", noState)
	if m := codeRe.FindStringSubmatch(r.stdout); r.code != exitOK || m == nil || m[1] != pinCode {
		t.Fatalf("offline (text): %+v", r)
	}
	// A wrong PIN is not detected on the phone: it just gives another code.
	r = runApp(t, "", "offline", png, "--pin", "1111", "--keys", onlyKeys, "--state", noState)
	if m := codeRe.FindStringSubmatch(r.stdout); r.code != exitOK || m == nil || m[1] == pinCode {
		t.Fatalf("wrong PIN: %+v", r)
	}
	r = runApp(t, "", "offline", sessDev["verification_data"].(string), "--keys", onlyKeys, "--state", noState)
	m = codeRe.FindStringSubmatch(r.stdout)
	if r.code != exitOK || m == nil || len(m[1]) != 6 {
		t.Fatalf("offline device: %+v", r)
	}
	devCode := m[1]
	for _, bad := range []string{"https://login.example.com/q/AAAAAAAAAAAAAAAAAAAAAA", "1D6AAAAAAAAAAA\x1b[2J"} {
		if r := runApp(t, "", "offline", bad, "--keys", onlyKeys, "--state", noState); r.code != exitError {
			t.Fatalf("offline %q: %+v", bad, r)
		}
	}

	// Back online (a new process on the same data): the codes verify.
	srv = startOfflineServer(t, srv.dbPath, key)
	if v := srv.api("POST", wire.Path(wire.PathOfflineSessionVerify, sessPIN["id"].(string)), map[string]any{"otp": pinCode}); v["result"] != "success" {
		t.Fatalf("verify PIN code: %v", v)
	}
	if v := srv.api("POST", wire.Path(wire.PathOfflineSessionVerify, sessDev["id"].(string)), map[string]any{"otp": devCode}); v["result"] != "success" {
		t.Fatalf("verify device code: %v", v)
	}

	// Online transaction approval through scan.
	tx := srv.api("POST", wire.PathApprovals, map[string]any{"email": "ada@example.com", "text": "Pay CHF 1'000 to Bob"})
	// The device state names the old origin; point it at the new server.
	d, _ := appclient.Load(state)
	d.Server, d.Origin = srv.URL, srv.URL
	if err := d.Save(state); err != nil {
		t.Fatal(err)
	}
	r = runApp(t, "y\n", "scan", writePNG(t, tx["qr"].(string)), "--state", state)
	if r.code != exitOK || !strings.Contains(r.stdout, "Pay CHF 1'000 to Bob") || !strings.Contains(r.stdout, "Approved") {
		t.Fatalf("approve: %+v", r)
	}
	if v := srv.api("GET", wire.Prefix(wire.PathApproval)+tx["id"].(string), nil); v["status"] != "approved" {
		t.Fatalf("status %v", v)
	}
	tx = srv.api("POST", wire.PathApprovals, map[string]any{"email": "ada@example.com", "text": "Pay CHF 9'999 to Mallory"})
	if r := runApp(t, "", "scan", tx["url"].(string), "--deny", "--state", state); r.code != exitDenied {
		t.Fatalf("deny: %+v", r)
	}

	if r := runApp(t, "", "deactivate", "offline-pin", "--state", state); r.code != exitOK {
		t.Fatalf("deactivate: %+v", r)
	}
	keys, _ := appclient.LoadOfflineKeys(keysFile)
	if len(keys.Keys) != 1 || keys.Keys[0].Method != offline.Device {
		t.Fatalf("keys after deactivate: %+v", keys.Keys)
	}
}

func TestRunOfflineUsage(t *testing.T) {
	for _, args := range [][]string{{"offline"}, {"offline", "a", "b"}, {"activate"}, {"deactivate"}} {
		if r := runApp(t, "", args...); r.code != exitUsage {
			t.Fatalf("%v: %+v", args, r)
		}
	}
	if r := runApp(t, "", "activate", "offline-face", "--state", filepath.Join(t.TempDir(), "d.json")); r.code != exitError ||
		!strings.Contains(r.stderr, "invalid_method") {
		t.Fatalf("unknown method: %+v", r)
	}
}
