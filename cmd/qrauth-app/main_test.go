package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/wire"
	qrcode "github.com/skip2/go-qrcode"
)

var testSalt = []byte("0123456789abcdef")

const testPSK = "AAAAAAAAAAAAAAAAAAAAAA"

// result is what one run printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// runApp runs the program with args and stdin.
func runApp(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	r := result{code, out.String(), errb.String()}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "{\"") {
		t.Errorf("stderr leaks a stack or raw JSON:\n%s", r.stderr)
	}
	return r
}

// testCode is the one typed code the fake server knows; it stands for
// testPSK.
const testCode = "7K3MQX9D"

// server is a fake qrauth server for the app: discovery, an app socket that
// runs a script, and a session list. The real server's end-to-end tests
// drive this command against the real thing.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	script   func(conn *websocket.Conn, origin string)
	wg       sync.WaitGroup
	revoked  []string
	decision *wire.AppFrame
	site     *wire.SiteInfo // the relying site the next room's challenge names
}

func newServer(t *testing.T) *server {
	s := &server{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/qrauth", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(wire.Discovery{
			ProtocolVersion: wire.ProtocolVersion,
			Origin:          s.URL,
			PhoneSalt:       base64.RawURLEncoding.EncodeToString(testSalt),
			QRPrefix:        s.URL + wire.Prefix(wire.PathScan),
			AppSocket:       "ws" + strings.TrimPrefix(s.URL, "http") + wire.PathAppSocket,
			SessionsURL:     s.URL + wire.PathAppSessions,
		})
	})
	mux.HandleFunc("GET /ws/app", func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.wg.Add(1)
		defer s.wg.Done()
		defer conn.Close()
		s.mu.Lock()
		script := s.script
		s.mu.Unlock()
		script(conn, s.URL)
	})
	mux.HandleFunc("GET /api/app/sessions", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(wire.HeaderSignature) == "" {
			w.WriteHeader(401)
			return
		}
		w.Write([]byte(`{"sessions":[{"id":"s_one","ip":"203.0.113.7","browser":"Firefox 140","os":"Linux",
			"user_agent":"x","created_at":"2025-06-01T10:00:00Z","last_seen_at":"2025-06-01T11:00:00Z",
			"expires_at":"2025-06-08T10:00:00Z"}]}`))
	})
	mux.HandleFunc("DELETE /api/app/sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		if id := r.PathValue("id"); id != "s_one" {
			w.WriteHeader(404)
			w.Write([]byte(`{"code":"not_found","reason":"session_not_found","message":"There is no such session."}`))
			return
		}
		s.mu.Lock()
		s.revoked = append(s.revoked, r.PathValue("id"))
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /api/app/code", func(w http.ResponseWriter, r *http.Request) {
		var req wire.CodeRequest
		if json.NewDecoder(r.Body).Decode(&req) != nil || req.Code != testCode {
			w.WriteHeader(404)
			w.Write([]byte(`{"code":"not_found","reason":"code_unknown","message":"This code is not valid."}`))
			return
		}
		json.NewEncoder(w).Encode(wire.CodeResponse{URL: s.URL + wire.Path(wire.PathScan, testPSK)})
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(func() { s.Close(); s.wg.Wait() })
	return s
}

// room makes the app socket answer one scan: join, a challenge of mode,
// then done with the result that matches the decision (or with
// profile_needed first, at sign-up without a profile, and a done after the
// browser's form).
func (s *server) room(t *testing.T, mode string, warning string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	site := s.site
	s.script = func(conn *websocket.Conn, origin string) {
		var join wire.AppFrame
		if err := conn.ReadJSON(&join); err != nil || join.Type != wire.MsgJoin || join.PSK != testPSK {
			t.Errorf("join = %+v, %v", join, err)
			return
		}
		known := false
		conn.WriteJSON(&wire.ServerMessage{
			Type: wire.MsgChallenge, Mode: mode, Room: "r1", Nonce: "n1", Origin: origin,
			Context: &wire.BrowserContext{IP: "203.0.113.7", Place: "Zurich, CH", Browser: "Firefox 140",
				OS: "Linux", Origin: origin, UserAgent: "Mozilla/5.0 \x1b[2J", Time: time.Unix(1748772000, 0)},
			Proximity:    &wire.Proximity{SameNetwork: warning == "", AppIP: "198.51.100.2", Warning: warning},
			KnownAddress: &known,
			Account:      &wire.AccountInfo{Name: "Alice\x1b[31m"},
			Site:         site,
		})
		var dec wire.AppFrame
		if err := conn.ReadJSON(&dec); err != nil {
			return
		}
		s.mu.Lock()
		s.decision = &dec
		s.mu.Unlock()
		result := map[string]string{wire.ModeLogin: "signed_in", wire.ModeSignUp: "signed_up", wire.ModeLink: "linked"}[mode]
		if dec.Decision == wire.DecisionDeny {
			result = "denied"
		} else if mode == wire.ModeSignUp && dec.Profile == nil {
			conn.WriteJSON(&wire.ServerMessage{Type: wire.MsgNeedsForm})
		}
		conn.WriteJSON(&wire.ServerMessage{Type: wire.MsgDone, Result: result, UserID: "u_1",
			Device: &wire.DeviceInfo{ID: join.DeviceID, Name: dec.DeviceName}})
		conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	}
}

// lastDecision returns the decision frame the server got.
func (s *server) lastDecision() *wire.AppFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.decision
}

// initDevice runs init against s and returns the state file.
func initDevice(t *testing.T, s *server) string {
	t.Helper()
	state := filepath.Join(t.TempDir(), "device.json")
	if r := runApp(t, "", "init", "--server", s.URL, "--phone", "+41 79 123 45 67", "--name", "Pixel 8", "--state", state); r.code != exitOK {
		t.Fatalf("init = %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return state
}

func TestRunUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"NoCommand", nil},
		{"UnknownCommand", []string{"login"}},
		{"UnknownFlag", []string{"init", "--bogus"}},
		{"InitNoServer", []string{"init", "--phone", "+41791234567"}},
		{"InitNoPhone", []string{"init", "--server", "https://login.example.com"}},
		{"InitArgument", []string{"init", "--server", "https://x", "--phone", "+41791234567", "extra"}},
		{"ScanNoArgument", []string{"scan"}},
		{"ScanTwoArguments", []string{"scan", "a.png", "b.png"}},
		{"ScanApproveAndDeny", []string{"scan", "a.png", "--approve", "--deny"}},
		{"ScanBadTimeout", []string{"scan", "a.png", "--timeout", "-1s"}},
		{"SessionsArgument", []string{"sessions", "x"}},
		{"RevokeNoID", []string{"revoke"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runApp(t, "", tt.args...)
			if r.code != exitUsage || r.stderr == "" {
				t.Fatalf("code = %d, stderr = %q; want %d and a message", r.code, r.stderr, exitUsage)
			}
		})
	}
	t.Run("Help", func(t *testing.T) {
		if r := runApp(t, "", "help"); r.code != exitOK || !strings.Contains(r.stdout, "qrauth-app scan") {
			t.Fatalf("help = %+v", r)
		}
	})
}

func TestRunInit(t *testing.T) {
	s := newServer(t)
	state := filepath.Join(t.TempDir(), "sub", "device.json")
	r := runApp(t, "", "init", "--server", s.URL, "--phone", "+41 79 123 45 67", "--name", "Pixel 8", "--state", state)
	if r.code != exitOK {
		t.Fatalf("init = %+v", r)
	}
	d, err := appclient.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	hash := qrauth.PhoneIDHash(testSalt, "+41791234567")
	if !strings.Contains(r.stdout, string(d.ID())) || !strings.Contains(r.stdout, hash) || d.PhoneIDHash != hash || d.Name != "Pixel 8" {
		t.Fatalf("init printed:\n%s\ndevice = %+v", r.stdout, d)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state mode = %v, %v", fi.Mode(), err)
	}

	t.Run("ErrExists", func(t *testing.T) {
		r := runApp(t, "", "init", "--server", s.URL, "--phone", "+41791234567", "--state", state)
		if r.code != exitError || !strings.Contains(r.stderr, "[state_exists]") {
			t.Fatalf("second init = %+v", r)
		}
		if again, _ := appclient.Load(state); again == nil || again.ID() != d.ID() {
			t.Fatal("the existing key was replaced")
		}
	})

	t.Run("Force", func(t *testing.T) {
		r := runApp(t, "", "init", "--force", "--server", s.URL, "--phone", "+41791234567", "--state", state)
		if r.code != exitOK {
			t.Fatalf("init --force = %+v", r)
		}
		if again, _ := appclient.Load(state); again == nil || again.ID() == d.ID() {
			t.Fatal("init --force kept the old key")
		}
	})

	t.Run("StateFromEnvironment", func(t *testing.T) {
		env := filepath.Join(t.TempDir(), "env.json")
		t.Setenv(stateEnv, env)
		if r := runApp(t, "", "init", "--server", s.URL, "--phone", "+41791234567"); r.code != exitOK {
			t.Fatalf("init = %+v", r)
		}
		if _, err := appclient.Load(env); err != nil {
			t.Fatal(err)
		}
	})

	for _, tt := range []struct{ name, server, phone, reason string }{
		{"ErrPhone", s.URL, "079 123 45 67", "invalid_phone"},
		{"ErrServer", "login.example.com", "+41791234567", "invalid_server"},
		{"ErrUnreachable", "http://127.0.0.1:1", "+41791234567", "server_unreachable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runApp(t, "", "init", "--server", tt.server, "--phone", tt.phone, "--state", filepath.Join(t.TempDir(), "d.json"))
			if r.code != exitError || !strings.HasSuffix(r.stderr, "["+tt.reason+"]\n") || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("init = %d, stderr %q; want one line ending in [%s]", r.code, r.stderr, tt.reason)
			}
		})
	}
}

func TestRunScan(t *testing.T) {
	s := newServer(t)
	state := initDevice(t, s)
	url := s.URL + wire.Prefix(wire.PathScan) + testPSK

	t.Run("Approve", func(t *testing.T) {
		s.room(t, wire.ModeLogin, "")
		r := runApp(t, "", "scan", url, "--approve", "--state", state)
		if r.code != exitOK || !strings.Contains(r.stdout, "signed in") {
			t.Fatalf("scan = %+v", r)
		}
		for _, want := range []string{"Sign-in request", "203.0.113.7 (Zurich, CH)", "Firefox 140 on Linux", "Alice?[31m", "FIRST sign-in", "same network"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "\x1b") {
			t.Errorf("output passes a terminal escape through:\n%q", r.stdout)
		}
		if strings.Contains(r.stdout, "Sign in to") {
			t.Errorf("a plain sign-in names a site:\n%s", r.stdout)
		}
	})

	// A sign-in for a relying site names it, cleaned like every value.
	t.Run("SiteName", func(t *testing.T) {
		s.mu.Lock()
		s.site = &wire.SiteInfo{Name: "Example \x1b[2JWiki"}
		s.mu.Unlock()
		t.Cleanup(func() { s.mu.Lock(); s.site = nil; s.mu.Unlock() })
		s.room(t, wire.ModeLogin, "")
		r := runApp(t, "", "scan", url, "--approve", "--state", state)
		if r.code != exitOK || !strings.Contains(r.stdout, "Sign-in request\n  Sign in to Example ?[2JWiki\n") {
			t.Fatalf("scan = %d, output lacks the site:\n%s", r.code, r.stdout)
		}
	})

	t.Run("PromptYes", func(t *testing.T) {
		s.room(t, wire.ModeLogin, "The browser is in another country.")
		r := runApp(t, "y\n", "scan", "--state", state, url)
		if r.code != exitOK || !strings.Contains(r.stdout, "Approve? [y/N]") || !strings.Contains(r.stdout, "!!! WARNING: The browser is in another country.") {
			t.Fatalf("scan = %+v", r)
		}
	})

	t.Run("PromptDefaultNo", func(t *testing.T) {
		s.room(t, wire.ModeLogin, "")
		r := runApp(t, "", "scan", url, "--state", state)
		if r.code != exitDenied || !strings.Contains(r.stdout, "Denied") || s.lastDecision().Decision != wire.DecisionDeny {
			t.Fatalf("scan = %+v", r)
		}
	})

	t.Run("Deny", func(t *testing.T) {
		s.room(t, wire.ModeLogin, "")
		if r := runApp(t, "", "scan", url, "--deny", "--state", state); r.code != exitDenied {
			t.Fatalf("scan = %+v", r)
		}
	})

	t.Run("SignUpWithProfile", func(t *testing.T) {
		s.room(t, wire.ModeSignUp, "")
		r := runApp(t, "", "scan", url, "--approve", "--name", "Alice", "--email", "alice@example.com", "--state", state)
		if r.code != exitOK || !strings.Contains(r.stdout, "account created") || !strings.Contains(r.stdout, `"Pixel 8"`) {
			t.Fatalf("scan = %+v", r)
		}
		if p := s.lastDecision().Profile; p == nil || p.Name != "Alice" || p.Email != "alice@example.com" {
			t.Fatalf("profile = %+v", p)
		}
	})

	t.Run("SignUpFormInBrowser", func(t *testing.T) {
		s.room(t, wire.ModeSignUp, "")
		r := runApp(t, "", "scan", url, "--approve", "--state", state)
		if r.code != exitOK || !strings.Contains(r.stdout, "Fill in the sign-up form") {
			t.Fatalf("scan = %+v", r)
		}
	})

	t.Run("TypedCode", func(t *testing.T) {
		s.room(t, wire.ModeLogin, "")
		r := runApp(t, "", "scan", "7k3m-qx9d", "--approve", "--state", state)
		if r.code != exitOK || !strings.Contains(r.stdout, "signed in") {
			t.Fatalf("scan = %+v", r)
		}
	})

	t.Run("PictureFile", func(t *testing.T) {
		s.room(t, wire.ModeLogin, "")
		png := filepath.Join(t.TempDir(), "qr.png")
		if err := qrcode.WriteFile(url, qrcode.Medium, 256, png); err != nil {
			t.Fatal(err)
		}
		if r := runApp(t, "", "scan", png, "--approve", "--state", state); r.code != exitOK {
			t.Fatalf("scan = %+v", r)
		}
	})

	for _, tt := range []struct {
		name   string
		args   []string
		reason string
	}{
		{"ErrForeignOrigin", []string{"https://evil.example/q/" + testPSK}, "foreign_origin"},
		{"ErrNotACode", []string{s.URL + "/login"}, "not_a_qrauth_code"},
		{"ErrNoSuchFile", []string{"missing.png"}, "no_such_file"},
		{"ErrWrongCode", []string{"7K3M-QX9E"}, "code_unknown"},
		{"ErrBadEmail", []string{url, "--email", "nope"}, "invalid_email"},
		{"ErrNoState", []string{url, "--state", filepath.Join(t.TempDir(), "none.json")}, "no_state_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runApp(t, "", append([]string{"scan", "--approve", "--state", state}, tt.args...)...)
			if r.code != exitError || !strings.HasSuffix(r.stderr, "["+tt.reason+"]\n") || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("scan = %d, stderr %q; want one line ending in [%s]", r.code, r.stderr, tt.reason)
			}
		})
	}
}

func TestRunSessions(t *testing.T) {
	s := newServer(t)
	state := initDevice(t, s)

	r := runApp(t, "", "sessions", "--state", state)
	if r.code != exitOK {
		t.Fatalf("sessions = %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "LAST SEEN") ||
		!strings.HasPrefix(lines[1], "s_one") || !strings.Contains(lines[1], "Firefox 140") {
		t.Fatalf("sessions printed:\n%s", r.stdout)
	}

	if r := runApp(t, "", "revoke", "s_one", "--state", state); r.code != exitOK || !strings.Contains(r.stdout, "s_one ended") {
		t.Fatalf("revoke = %+v", r)
	}
	r = runApp(t, "", "revoke", "--state", state, "s_two")
	if r.code != exitError || r.stderr != "qrauth-app: There is no such session. [session_not_found]\n" {
		t.Fatalf("revoke unknown = %+v", r)
	}
}

// Before: a phone set up under http:// whose server moved to https:// got
// "The server refused the request as malformed. [http_400]", and a
// certificate it did not trust "Cannot reach the qrauth server".
func TestServerMovedToHTTPS(t *testing.T) {
	s := newServer(t)
	state := filepath.Join(t.TempDir(), "device.json")
	if r := runApp(t, "", "init", "--server", s.URL, "--phone", "+41791234567", "--state", state); r.code != exitOK {
		t.Fatalf("init = %+v", r)
	}
	// The same server, now on HTTPS with a certificate of its own CA.
	tlsSrv := httptest.NewTLSServer(s.Config.Handler)
	defer tlsSrv.Close()
	plain := "http://" + strings.TrimPrefix(tlsSrv.URL, "https://")
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(state, []byte(strings.ReplaceAll(string(data), s.URL, plain)), 0o600)

	r := runApp(t, "", "sessions", "--state", state)
	if r.code != exitError || !strings.Contains(r.stderr, "[https_required]") || !strings.Contains(r.stderr, tlsSrv.URL) ||
		!strings.Contains(r.stderr, state) {
		t.Fatalf("sessions = %+v", r)
	}

	r = runApp(t, "", "init", "--server", tlsSrv.URL, "--phone", "+41791234567", "--state", filepath.Join(t.TempDir(), "d.json"))
	if r.code != exitError || !strings.Contains(r.stderr, "[certificate_untrusted]") || !strings.Contains(r.stderr, "SSL_CERT_FILE to the CA's certificate file (PEM).") {
		t.Fatalf("init against an untrusted certificate = %+v", r)
	}
}
