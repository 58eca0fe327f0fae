package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	pngpkg "image/png"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
)

// offlineAPIToken is the relying site's bearer token in these tests.
const offlineAPIToken = "relying-site-token-0123456789abcdef-xyz"

// offlineFastPIN keeps the PIN key derivation cheap under -race; the
// appclient tests use the defaults.
var offlineFastPIN = &appclient.PINParams{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}

// offlineClock is real time plus an offset the test moves forward, so that
// expiry is tested without sleeping.
type offlineClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offlineClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offlineClock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// offlineEnv is a server with the offline flow on, one signed-up phone
// (Ada) and her signed-in browser.
type offlineEnv struct {
	t     *testing.T
	srv   *testServer
	p     *phone
	b     *browser
	dev   *appclient.Device
	keys  *appclient.OfflineKeys
	clock *offlineClock
	uid   qrauth.UserID
}

func offlineConfig(clock *offlineClock, edit func(*testConfig)) func(*testConfig) {
	return func(c *testConfig) {
		c.MasterKey = bytes.Repeat([]byte{7}, 32)
		c.OfflineOn = true
		c.Offline.APITokens = []string{offlineAPIToken}
		c.Now = clock.Now
		if edit != nil {
			edit(c)
		}
	}
}

func newOfflineEnv(t *testing.T, edit func(*testConfig)) *offlineEnv {
	t.Helper()
	clock := &offlineClock{}
	srv := MustOpenServer(t, offlineConfig(clock, edit))
	p := newPhone(t, srv, "+41 79 123 45 67")
	b := signUp(t, srv, p)
	_, me := b.do("GET", wire.PathMe, "")
	e := &offlineEnv{t: t, srv: srv, p: p, b: b, clock: clock, keys: &appclient.OfflineKeys{},
		uid: qrauth.UserID(me["user"].(map[string]any)["id"].(string))}
	e.dev = offlineDevice(srv, p, clock)
	return e
}

// offlineDevice is the real phone library over a raw test phone's key.
func offlineDevice(srv *testServer, p *phone, clock *offlineClock) *appclient.Device {
	return &appclient.Device{Server: srv.URL, Origin: srv.URL, PhoneIDHash: p.phone, Name: "Test phone",
		PrivateKey: p.priv, Now: clock.Now}
}

// activate turns a method on and keeps its key.
func (e *offlineEnv) activate(m offline.Method, pin string) *appclient.OfflineKey {
	e.t.Helper()
	k, err := e.dev.ActivateOffline(context.Background(), m, appclient.ActivateOptions{PIN: pin, PINParams: offlineFastPIN})
	if err != nil {
		e.t.Fatalf("activate %s: %v", m, err)
	}
	e.keys.Put(*k)
	return k
}

// api calls the relying-site API with the bearer token.
func (e *offlineEnv) api(method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	return offlineCall(e.t, e.srv.URL, method, path, body, "Bearer "+offlineAPIToken)
}

func offlineCall(t *testing.T, base, method, path string, body any, auth string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s %s: body %q", method, path, data)
		}
	}
	return resp.StatusCode, m
}

// begin starts a session through the API and checks the answer's shape.
func (e *offlineEnv) begin(m offline.Method, context string) map[string]any {
	e.t.Helper()
	st, body := e.api("POST", wire.PathOfflineSessions, map[string]any{"user_id": e.uid, "method": m, "context": context})
	if st != 201 || body["status"] != "pending" || !strings.HasPrefix(body["qr"].(string), "data:image/png;base64,") {
		e.t.Fatalf("begin: %d %v", st, body)
	}
	return body
}

// code reads the session's QR image as a phone would and derives the code
// with the phone library, which never touches the network for it.
func (e *offlineEnv) code(session map[string]any, pin string) string {
	e.t.Helper()
	text := offlineScan(e.t, session["qr"].(string))
	if text != session["verification_data"] {
		e.t.Fatalf("QR holds %q, verification_data is %q", text, session["verification_data"])
	}
	code, ch, err := appclient.OfflineCode(text, e.keys, pin)
	if err != nil {
		e.t.Fatalf("offline code: %v", err)
	}
	if ch.Context != session["context"] {
		e.t.Fatalf("phone shows %q, want %q", ch.Context, session["context"])
	}
	return code
}

// offlineScan decodes a PNG data URL with the phone's QR decoder.
func offlineScan(t *testing.T, dataURL string) string {
	t.Helper()
	png := testutil.DataURLPNG(t, dataURL)
	text, err := appclient.DecodeQRImage(bytes.NewReader(png))
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func (e *offlineEnv) verify(session map[string]any, otp string) (int, map[string]any) {
	e.t.Helper()
	return e.api("POST", wire.Path(wire.PathOfflineSessionVerify, session["id"].(string)), map[string]any{"otp": otp})
}

func (e *offlineEnv) status(session map[string]any) string {
	e.t.Helper()
	st, body := e.api("GET", wire.Prefix(wire.PathOfflineSession)+session["id"].(string), nil)
	if st != 200 {
		e.t.Fatalf("status: %d %v", st, body)
	}
	return body["status"].(string)
}

// wrongCode returns a well-formed code that is not code.
func wrongCode(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func wantReason(t *testing.T, st int, body map[string]any, status int, reason string) {
	t.Helper()
	if st != status || body["reason"] != reason || body["message"] == "" {
		t.Fatalf("got %d %v, want %d %s", st, body, status, reason)
	}
}

func auditTypes(t *testing.T, st qrauth.Store) []string {
	t.Helper()
	events, err := st.ListAudit(context.Background(), qrauth.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

func TestOfflineConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*testConfig)
		want string
	}{
		{"NoMasterKey", func(c *testConfig) { c.OfflineOn = true }, "qrauthd genkey"},
		{"OTPLength3", func(c *testConfig) { c.OfflineOn, c.Offline.OTPLength = true, 3 }, "OTP length 3"},
		{"OTPLength10", func(c *testConfig) { c.OfflineOn, c.Offline.OTPLength = true, 10 }, "OTP length 10"},
		{"ShortToken", func(c *testConfig) { c.OfflineOn, c.Offline.APITokens = true, []string{"short"} }, "API token 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg testConfig
			tc.edit(&cfg)
			_, err := newTestFlows(cfg, MustOpenServer(t, nil).DB)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	for n := offline.MinOTPLength; n <= offline.MaxOTPLength; n++ {
		cfg := testConfig{Config: server.Config{MasterKey: make([]byte, 32)}}
		cfg.OfflineOn, cfg.Offline.OTPLength = true, n
		if _, err := newTestFlows(cfg, MustOpenServer(t, nil).DB); err != nil {
			t.Fatalf("length %d: %v", n, err)
		}
	}
}

// TestOfflineDisabled: a server without the offline flow in its list has
// none of its routes, its pages included.
func TestOfflineDisabled(t *testing.T) {
	srv := MustOpenServer(t, nil)
	st, body := offlineCall(t, srv.URL, "POST", wire.PathOfflineSessions, map[string]any{}, "Bearer "+offlineAPIToken)
	wantReason(t, st, body, 404, "no_such_route")
	st, body = offlineCall(t, srv.URL, "GET", wire.PathAppOffline, nil, "")
	wantReason(t, st, body, 404, "no_such_route")
	resp, err := http.Get(srv.URL + wire.PathOffline)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("the page of a flow that is off: %d, want 404", resp.StatusCode)
	}
}

func TestOfflineActivation(t *testing.T) {
	e := newOfflineEnv(t, nil)
	ctx := context.Background()

	// Unsigned, or signed by an unknown phone: refused, nothing stored.
	before := snapshot(t, e.srv.DB)
	st, body := offlineCall(t, e.srv.URL, "POST", wire.Path(wire.PathAppOfflineMethod, "OFFLINE_DEVICE"), nil, "")
	wantReason(t, st, body, 401, "device_signature_required")
	stranger := offlineDevice(e.srv, newPhone(t, e.srv, "+1 202 555 0100"), e.clock)
	if _, err := stranger.ActivateOffline(ctx, offline.Device, appclient.ActivateOptions{}); qrauth.ErrorReason(err) != "device_unknown" {
		t.Fatalf("unknown device: %v", err)
	}
	if _, err := e.dev.ActivateOffline(ctx, "OFFLINE_FACE", appclient.ActivateOptions{}); qrauth.ErrorReason(err) != "invalid_method" {
		t.Fatalf("unknown method: %v", err)
	}
	if _, err := e.dev.ActivateOffline(ctx, offline.PIN, appclient.ActivateOptions{PIN: "12"}); qrauth.ErrorReason(err) != "invalid_pin" {
		t.Fatalf("short PIN: %v", err)
	}
	if after := snapshot(t, e.srv.DB); after != before {
		t.Fatal("a refused activation changed the store")
	}
	if creds, _ := e.srv.DB.FindOfflineCredentialsByUser(ctx, e.uid); len(creds) != 0 {
		t.Fatalf("credentials after refusals: %+v", creds)
	}

	dk := e.activate(offline.Device, "")
	pk := e.activate(offline.PIN, "4711")
	if len(dk.Key) != 32 || dk.WrappedKey != nil || pk.Key != nil || len(pk.WrappedKey) != 32 {
		t.Fatalf("keys %+v %+v", dk, pk)
	}
	// The server keeps each key sealed under the master key, never in clear.
	for _, k := range []*appclient.OfflineKey{dk} {
		c, err := e.srv.DB.FindOfflineCredential(ctx, e.p.id, k.Method)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(c.SealedKey, k.Key) || len(c.SealedKey) < 32+12+16 {
			t.Fatalf("stored key is not sealed: %x", c.SealedKey)
		}
	}
	list, err := e.dev.OfflineMethods(ctx)
	if err != nil || len(list) != 2 || list[0].RemainingAttempts != 3 || list[0].Locked {
		t.Fatalf("methods %+v %v", list, err)
	}
	if got := auditTypes(t, e.srv.DB); strings.Join(got, ",") != "signup,signin,offline_activated,offline_activated" {
		t.Fatalf("audit %v", got)
	}

	// Activating again replaces the key: a session begun under the old
	// key fails, and so does the old key's code.
	sess := e.begin(offline.Device, "old key")
	old := e.code(sess, "")
	e.activate(offline.Device, "")
	if e.status(sess) != "failed" {
		t.Fatal("status of a session whose key was replaced is not failed")
	}
	st, body = e.verify(sess, old)
	if st != 200 || body["result"] != "failure" || body["status"] != "failed" {
		t.Fatalf("verify after re-activation: %d %v", st, body)
	}
	if e.status(sess) != "failed" {
		t.Fatal("status is not failed")
	}

	// Deactivation.
	if err := e.dev.DeactivateOffline(ctx, offline.PIN); err != nil {
		t.Fatal(err)
	}
	if err := e.dev.DeactivateOffline(ctx, offline.PIN); qrauth.ErrorReason(err) != "offline_method_not_found" {
		t.Fatalf("deactivate twice: %v", err)
	}
	st, body = e.api("POST", wire.PathOfflineSessions, map[string]any{"user_id": e.uid, "method": "OFFLINE_PIN", "context": "x"})
	wantReason(t, st, body, 404, "offline_method_not_found")
}

func TestOfflineBeginVerify(t *testing.T) {
	for _, n := range []int{4, 6, 9} {
		t.Run(fmt.Sprint(n, "Digits"), func(t *testing.T) {
			e := newOfflineEnv(t, func(c *testConfig) { c.Offline.OTPLength = n })
			e.activate(offline.Device, "")
			e.activate(offline.PIN, "271828")
			for _, m := range offline.Methods {
				pin := ""
				if m == offline.PIN {
					pin = "271828"
				}
				sess := e.begin(m, "Pay CHF 120.00 to Muster AG")
				if sess["otp_length"] != float64(n) || sess["method"] != string(m) || sess["device_id"] != string(e.p.id) ||
					sess["remaining_attempts"] != float64(3) || !strings.Contains(sess["page_url"].(string), wire.PathApprove+"#"+sess["id"].(string)+".") {
					t.Fatalf("begin %v", sess)
				}
				code := e.code(sess, pin)
				if len(code) != n {
					t.Fatalf("code %q", code)
				}
				if e.status(sess) != "pending" {
					t.Fatal("not pending")
				}
				st, body := e.verify(sess, code)
				if st != 200 || body["result"] != "success" || body["status"] != "succeeded" {
					t.Fatalf("%s verify: %d %v", m, st, body)
				}
				if e.status(sess) != "succeeded" {
					t.Fatal("status after success")
				}
				// A verified code is never verified again.
				st, body = e.verify(sess, code)
				wantReason(t, st, body, 409, "session_succeeded")
			}
			types := auditTypes(t, e.srv.DB)
			if n := strings.Count(strings.Join(types, ","), "offline_verified"); n != 2 {
				t.Fatalf("audit %v", types)
			}
		})
	}
}

func TestOfflineCodeOfAnotherTransaction(t *testing.T) {
	e := newOfflineEnv(t, nil)
	e.activate(offline.Device, "")
	a := e.begin(offline.Device, "Pay CHF 10 to Alice")
	b := e.begin(offline.Device, "Pay CHF 10 to Alice") // same text, new challenge
	codeA := e.code(a, "")
	if codeA == e.code(b, "") {
		t.Fatal("two sessions with the same context gave the same code")
	}
	st, body := e.verify(b, codeA)
	if st != 200 || body["result"] != "failure" || body["status"] != "pending" || body["remaining_attempts"] != float64(2) {
		t.Fatalf("code of another session: %d %v", st, body)
	}
	st, body = e.verify(a, codeA)
	if body["result"] != "success" {
		t.Fatalf("%d %v", st, body)
	}
}

// TestOfflineWrongPIN: a wrong PIN is not noticed on the phone; it gives a
// wrong code, which counts.
func TestOfflineWrongPIN(t *testing.T) {
	e := newOfflineEnv(t, nil)
	e.activate(offline.PIN, "1234")
	sess := e.begin(offline.PIN, "Sign in")
	bad := e.code(sess, "4321")
	if bad == e.code(sess, "1234") {
		t.Fatal("a wrong PIN gave the right code")
	}
	_, body := e.verify(sess, bad)
	if body["result"] != "failure" || body["remaining_attempts"] != float64(2) {
		t.Fatalf("%v", body)
	}
}

func TestOfflineAttemptsCarryOverAndReset(t *testing.T) {
	e := newOfflineEnv(t, nil)
	e.activate(offline.PIN, "1234")
	s1 := e.begin(offline.PIN, "one")
	code1 := e.code(s1, "1234")
	if _, body := e.verify(s1, wrongCode(code1)); body["remaining_attempts"] != float64(2) {
		t.Fatalf("%v", body)
	}
	// A malformed code is refused without counting.
	st, body := e.verify(s1, "12")
	wantReason(t, st, body, 400, "malformed_otp")
	st, body = e.verify(s1, "abcdef")
	wantReason(t, st, body, 400, "malformed_otp")

	// A new session does not reset the count.
	s2 := e.begin(offline.PIN, "two")
	if s2["remaining_attempts"] != float64(2) {
		t.Fatalf("begin after a failure: %v", s2)
	}
	code2 := e.code(s2, "1234")
	if _, body := e.verify(s2, wrongCode(code2)); body["remaining_attempts"] != float64(1) {
		t.Fatalf("%v", body)
	}
	// Success resets it.
	if _, body := e.verify(s2, code2); body["result"] != "success" {
		t.Fatalf("%v", body)
	}
	s3 := e.begin(offline.PIN, "three")
	if s3["remaining_attempts"] != float64(3) {
		t.Fatalf("after success: %v", s3)
	}
	c, _ := e.srv.DB.FindOfflineCredential(context.Background(), e.p.id, offline.PIN)
	if c.Failures != 0 || c.LastUsedAt.IsZero() {
		t.Fatalf("%+v", c)
	}
}

func TestOfflineLockOneMethod(t *testing.T) {
	e := newOfflineEnv(t, nil)
	e.activate(offline.PIN, "1234")
	e.activate(offline.Device, "")
	pending := e.begin(offline.PIN, "begun before the lock")
	for i := range 3 {
		s := e.begin(offline.PIN, fmt.Sprint("try ", i))
		_, body := e.verify(s, wrongCode(e.code(s, "1234")))
		want := "pending"
		if i == 2 {
			want = "locked"
		}
		if body["result"] != "failure" || body["status"] != want || body["remaining_attempts"] != float64(2-i) {
			t.Fatalf("wrong code %d: %v", i, body)
		}
	}
	// The PIN method is locked: no new session, and a session begun
	// before the lock cannot succeed even with the right code.
	st, body := e.api("POST", wire.PathOfflineSessions, map[string]any{"user_id": e.uid, "method": "OFFLINE_PIN", "context": "x"})
	wantReason(t, st, body, 409, "method_locked")
	if e.status(pending) != "locked" {
		t.Fatal("a pending session of a locked method does not say locked")
	}
	_, body = e.verify(pending, e.code(pending, "1234"))
	if body["result"] != "failure" || body["status"] != "locked" {
		t.Fatalf("right code on a locked method: %v", body)
	}
	// Activating the locked method again does not lift the lock.
	if _, err := e.dev.ActivateOffline(context.Background(), offline.PIN, appclient.ActivateOptions{PIN: "9999", PINParams: offlineFastPIN}); qrauth.ErrorReason(err) != "method_locked" {
		t.Fatalf("re-activation of a locked method: %v", err)
	}

	// The other offline method and the online QR sign-in still work.
	s := e.begin(offline.Device, "other method")
	if _, body := e.verify(s, e.code(s, "")); body["result"] != "success" {
		t.Fatalf("other method: %v", body)
	}
	b := signIn(t, e.srv, e.p)
	if st, _ := b.do("GET", wire.PathMe, ""); st != 200 {
		t.Fatal("QR sign-in after the lock")
	}
	types := strings.Join(auditTypes(t, e.srv.DB), ",")
	if strings.Count(types, "offline_locked") != 1 {
		t.Fatalf("audit %s", types)
	}

	// Unlock: the relying site's API and the admin API (a helpdesk user).
	st, body = e.api("POST", wire.Path(wire.PathOfflineUserUnlock, string(e.uid)), map[string]any{"device_id": e.p.id, "method": "OFFLINE_DEVICE"})
	wantReason(t, st, body, 409, "not_locked")
	st, body = e.api("POST", wire.Path(wire.PathOfflineUserUnlock, "u_nobody"), map[string]any{"device_id": e.p.id, "method": "OFFLINE_PIN"})
	wantReason(t, st, body, 404, "offline_method_not_found")
	st, body = e.b.do("POST", wire.Path(wire.PathAdminOfflineUserUnlock, string(e.uid)), `{"device_id":"`+string(e.p.id)+`","method":"OFFLINE_PIN"}`)
	wantReason(t, st, body, 403, "forbidden")
	if _, err := e.srv.DB.SetRoles(context.Background(), e.uid, []qrauth.Role{qrauth.RoleHelpdesk}); err != nil {
		t.Fatal(err)
	}
	st, body = e.b.do("GET", wire.Prefix(wire.PathAdminOfflineUser)+string(e.uid), "")
	if st != 200 || len(body["methods"].([]any)) != 2 || body["methods"].([]any)[1].(map[string]any)["locked"] != true {
		t.Fatalf("admin list: %d %v", st, body)
	}
	st, body = e.b.do("POST", wire.Path(wire.PathAdminOfflineUserUnlock, string(e.uid)), `{"device_id":"`+string(e.p.id)+`","method":"OFFLINE_PIN"}`)
	if st != 200 || body["method"].(map[string]any)["locked"] != false || body["method"].(map[string]any)["remaining_attempts"] != float64(3) {
		t.Fatalf("unlock: %d %v", st, body)
	}
	events, _ := e.srv.DB.ListAudit(context.Background(), qrauth.AuditFilter{UserID: e.uid})
	last := events[len(events)-1]
	if last.Type != offline.AuditUnlocked || !strings.Contains(last.Detail, "OFFLINE_PIN unlocked by "+string(e.uid)) {
		t.Fatalf("last event %+v", last)
	}
	s = e.begin(offline.PIN, "after unlock")
	if _, body := e.verify(s, e.code(s, "1234")); body["result"] != "success" {
		t.Fatalf("after unlock: %v", body)
	}
}

func TestOfflineStatusCancelExpiry(t *testing.T) {
	e := newOfflineEnv(t, func(c *testConfig) { c.Offline.SessionTTL = time.Minute })
	e.activate(offline.Device, "")

	s := e.begin(offline.Device, "cancel me")
	st, body := e.api("POST", wire.Path(wire.PathOfflineSessionCancel, s["id"].(string)), nil)
	if st != 200 || body["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", st, body)
	}
	if e.status(s) != "cancelled" {
		t.Fatal("status after cancel")
	}
	st, body = e.verify(s, e.code(s, ""))
	wantReason(t, st, body, 409, "session_cancelled")

	s = e.begin(offline.Device, "let me expire")
	code := e.code(s, "")
	e.clock.advance(time.Minute)
	if e.status(s) != "expired" {
		t.Fatal("status after expiry")
	}
	st, body = e.verify(s, code)
	wantReason(t, st, body, 410, "session_expired")
	st, body = e.api("POST", wire.Path(wire.PathOfflineSessionCancel, s["id"].(string)), nil)
	wantReason(t, st, body, 410, "session_expired")
	c, _ := e.srv.DB.FindOfflineCredential(context.Background(), e.p.id, offline.Device)
	if c.Failures != 0 {
		t.Fatal("a code for an expired session counted")
	}

	st, body = e.api("GET", wire.Path(wire.PathOfflineSession, "o_missing"), nil)
	wantReason(t, st, body, 404, "offline_session_not_found")
}

func TestOfflineBeginRefused(t *testing.T) {
	e := newOfflineEnv(t, nil)
	e.activate(offline.Device, "")
	cases := []struct {
		name   string
		body   string
		status int
		reason string
	}{
		{"ContextTooLong", `{"user_id":"` + string(e.uid) + `","method":"OFFLINE_DEVICE","context":"` + strings.Repeat("€", 67) + `"}`, 400, "context_too_long"},
		{"ContextTooLong200NonASCII", `{"user_id":"` + string(e.uid) + `","method":"OFFLINE_DEVICE","context":"` + strings.Repeat("é", 100) + `"}`, 400, "context_too_long"},
		{"ContextTooLong201", `{"user_id":"` + string(e.uid) + `","method":"OFFLINE_DEVICE","context":"` + strings.Repeat("a", 201) + `"}`, 400, "context_too_long"},
		{"ContextControl", `{"user_id":"` + string(e.uid) + `","method":"OFFLINE_DEVICE","context":"a\u001b[2Jb"}`, 400, "context_control_character"},
		{"ContextBidi", `{"user_id":"` + string(e.uid) + `","method":"OFFLINE_DEVICE","context":"Pay \u202e01 FHC"}`, 400, "context_control_character"},
		{"NoUser", `{"method":"OFFLINE_DEVICE","context":"x"}`, 400, "user_required"},
		{"TwoUsers", `{"user_id":"u_x","email":"a@example.com","method":"OFFLINE_DEVICE","context":"x"}`, 400, "user_required"},
		{"UnknownUser", `{"user_id":"u_nobody","method":"OFFLINE_DEVICE","context":"x"}`, 404, "user_not_found"},
		{"UnknownEmail", `{"email":"nobody@example.com","method":"OFFLINE_DEVICE","context":"x"}`, 404, "user_not_found"},
		{"Method", `{"user_id":"` + string(e.uid) + `","method":"OFFLINE_FACE","context":"x"}`, 400, "invalid_method"},
		{"NotActivated", `{"user_id":"` + string(e.uid) + `","method":"OFFLINE_PIN","context":"x"}`, 404, "offline_method_not_found"},
		{"OtherDevice", `{"user_id":"` + string(e.uid) + `","device_id":"d_AAAAAAAAAAAAAAAAAAAAAA","method":"OFFLINE_DEVICE","context":"x"}`, 404, "offline_method_not_found"},
		{"UnknownField", `{"user_id":"` + string(e.uid) + `","method":"OFFLINE_DEVICE","context":"x","otp_length":4}`, 400, "malformed_body"},
		{"NotJSON", `user=1`, 400, "malformed_body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, e.srv.DB)
			st, body := offlineCall(t, e.srv.URL, "POST", wire.PathOfflineSessions, json.RawMessage(tc.body), "Bearer "+offlineAPIToken)
			wantReason(t, st, body, tc.status, tc.reason)
			if snapshot(t, e.srv.DB) != before {
				t.Fatal("a refused begin changed the store")
			}
		})
	}
	// By e-mail it works, and exactly 199 bytes of context beyond ASCII
	// (200 of ASCII, see TestOfflineQRCapacity) are allowed.
	st, body := e.api("POST", wire.PathOfflineSessions, map[string]any{"email": "ADA@example.com", "method": "OFFLINE_DEVICE",
		"context": strings.Repeat("é", 99) + "a"})
	if st != 201 {
		t.Fatalf("%d %v", st, body)
	}
	// Who may call: the token, an administrator; nobody else.
	st, body = offlineCall(t, e.srv.URL, "POST", wire.PathOfflineSessions, map[string]any{}, "")
	wantReason(t, st, body, 401, "api_credential_required")
	st, body = offlineCall(t, e.srv.URL, "POST", wire.PathOfflineSessions, map[string]any{}, "Bearer "+strings.Repeat("x", 40))
	wantReason(t, st, body, 401, "bad_api_token")
	st, body = e.b.do("POST", wire.PathOfflineSessions, `{}`)
	wantReason(t, st, body, 403, "forbidden")
	if _, err := e.srv.DB.SetRoles(context.Background(), e.uid, []qrauth.Role{qrauth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	st, body = e.b.do("POST", wire.PathOfflineSessions, `{"user_id":"`+string(e.uid)+`","method":"OFFLINE_DEVICE","context":"by an admin"}`)
	if st != 201 {
		t.Fatalf("admin begin: %d %v", st, body)
	}
}

// TestOfflineQRCapacity: the longest contexts (200 bytes of ASCII, 199 of
// multi-byte UTF-8, which also carries the UTF-8 ECI) give verification data
// whose PNG is a version-10 QR code at level M and reads back byte for byte,
// both with the phone's decoder and with zbarimg, a generic scanner. The
// exact bit budget is TestQRCapacityWithECI's.
func TestOfflineQRCapacity(t *testing.T) {
	e := newOfflineEnv(t, func(c *testConfig) { c.Offline.OTPLength = 9 })
	e.activate(offline.PIN, "1234")
	for _, ctx := range []string{strings.Repeat("€", 66) + "a", strings.Repeat("é", 99) + "a", strings.Repeat("𝄞", 49) + "abc",
		strings.Repeat("a", 200), "Zahlung an Müller GmbH: 12,50 €\nIBAN CH93 0076 2011 6238 5295 7"} {
		sess := e.begin(offline.PIN, ctx)
		vd := sess["verification_data"].(string)
		if len(vd) > offline.MaxVDataLen || len(vd) != 13+len(ctx) {
			t.Fatalf("verification data of %d bytes", len(vd))
		}
		png := testutil.DataURLPNG(t, sess["qr"].(string))
		img, err := pngpkg.Decode(bytes.NewReader(png))
		if err != nil {
			t.Fatal(err)
		}
		// 3 pixels a module, a quiet zone of 4 modules, 17+4v modules a side.
		if v := (img.Bounds().Dx()/3 - 8 - 17) / 4; v > 10 {
			t.Fatalf("%d-byte context: version %d", len(ctx), v)
		}
		if got := offlineScan(t, sess["qr"].(string)); got != vd {
			t.Fatalf("scanned %q, want %q", got, vd)
		}
		if got := testutil.ZbarScan(t, png); got != vd {
			t.Fatalf("zbarimg read %q, want %q", got, vd)
		}
		if _, body := e.verify(sess, e.code(sess, "1234")); body["result"] != "success" {
			t.Fatalf("%v", body)
		}
	}
	// One more byte no longer fits, and is refused before anything happens.
	for _, ctx := range []string{strings.Repeat("a", 201), strings.Repeat("é", 100), strings.Repeat("€", 66) + "ab"} {
		st, body := e.api("POST", wire.PathOfflineSessions, map[string]any{"user_id": e.uid, "method": offline.PIN, "context": ctx})
		wantReason(t, st, body, 400, "context_too_long")
	}
}

// TestOfflineBrowserSignIn drives the "sign in with a code" page's API
// like the page does.
func TestOfflineBrowserSignIn(t *testing.T) {
	e := newOfflineEnv(t, nil)
	e.activate(offline.PIN, "1234")
	b := newBrowser(t, e.srv)

	st, body := b.do("POST", wire.PathOfflineSignIn, `{"identifier":"nobody@example.com"}`)
	wantReason(t, st, body, 404, "no_offline_method")
	st, body = b.do("POST", wire.PathOfflineSignIn, `{"identifier":"not an address"}`)
	wantReason(t, st, body, 400, "invalid_identifier")

	st, body = b.do("POST", wire.PathOfflineSignIn, `{"identifier":" ada@example.com "}`)
	if st != 200 || body["method"] != "OFFLINE_PIN" || body["device_name"] != "Test phone" || body["choices"] != float64(1) {
		t.Fatalf("begin: %d %v", st, body)
	}
	id := body["id"].(string)
	text := offlineScan(t, body["qr"].(string))
	code, ch, err := appclient.OfflineCode(text, e.keys, "1234")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Context != "Sign in to "+strings.TrimPrefix(e.srv.URL, "http://") {
		t.Fatalf("context %q", ch.Context)
	}
	// Another browser cannot use this session, nor the relying-site API.
	other := newBrowser(t, e.srv)
	st, body = other.do("POST", wire.Path(wire.PathOfflineSignInVerify, id), `{"otp":"`+code+`"}`)
	wantReason(t, st, body, 404, "offline_session_not_found")
	st, body = e.api("POST", wire.Path(wire.PathOfflineSessionVerify, id), map[string]any{"otp": code})
	wantReason(t, st, body, 404, "offline_session_not_found")

	st, body = b.do("POST", wire.Path(wire.PathOfflineSignInVerify, id), `{"otp":"`+wrongCode(code)+`"}`)
	wantReason(t, st, body, 401, "wrong_code")
	if !strings.Contains(body["message"].(string), "2 attempts left") {
		t.Fatalf("message %q", body["message"])
	}
	st, body = b.do("POST", wire.Path(wire.PathOfflineSignInVerify, id), `{"otp":"`+code+`"}`)
	if st != 200 || body["next"] != wire.PathAccount {
		t.Fatalf("verify: %d %v", st, body)
	}
	st, me := b.do("GET", wire.PathMe, "")
	if st != 200 || me["user"].(map[string]any)["id"] != string(e.uid) {
		t.Fatalf("me: %d %v", st, me)
	}
	events, _ := e.srv.DB.ListAudit(context.Background(), qrauth.AuditFilter{UserID: e.uid})
	if last := events[len(events)-1]; last.Type != qrauth.AuditSignIn || last.Detail != "methods offline" {
		t.Fatalf("last event %+v", last)
	}
	// Replay of the code that signed in.
	st, body = b.do("POST", wire.Path(wire.PathOfflineSignInVerify, id), `{"otp":"`+code+`"}`)
	wantReason(t, st, body, 409, "session_succeeded")

	// Cancel.
	_, body = b.do("POST", wire.PathOfflineSignIn, `{"identifier":"`+string(e.uid)+`"}`)
	id = body["id"].(string)
	if st, _ := b.do("POST", wire.Path(wire.PathOfflineSignInCancel, id), ""); st != 204 {
		t.Fatal(st)
	}
	st, body = b.do("POST", wire.Path(wire.PathOfflineSignInVerify, id), `{"otp":"123456"}`)
	wantReason(t, st, body, 409, "session_cancelled")
}

func TestOfflineBrowserSignInRateLimit(t *testing.T) {
	e := newOfflineEnv(t, func(c *testConfig) { c.Offline.BeginBurst = 2 })
	e.activate(offline.Device, "")
	b := newBrowser(t, e.srv)
	for range 2 {
		if st, body := b.do("POST", wire.PathOfflineSignIn, `{"identifier":"ada@example.com"}`); st != 200 {
			t.Fatalf("%d %v", st, body)
		}
	}
	st, body := b.do("POST", wire.PathOfflineSignIn, `{"identifier":"ada@example.com"}`)
	wantReason(t, st, body, 429, "rate_limited")
}

// TestOfflineApprovalPage: the page a relying site sends the browser to
// shows the transaction text and verifies the code.
func TestOfflineApprovalPage(t *testing.T) {
	e := newOfflineEnv(t, nil)
	e.activate(offline.Device, "")
	sess := e.begin(offline.Device, "Pay CHF 99 to Bob")
	token := sess["page_url"].(string)[strings.Index(sess["page_url"].(string), "#")+1:]
	st, body := offlineCall(t, e.srv.URL, "POST", wire.PathApproveView, map[string]any{"token": token}, "")
	if st != 200 || body["kind"] != "offline" || body["text"] != "Pay CHF 99 to Bob" || body["status"] != "pending" || body["otp_length"] != float64(6) {
		t.Fatalf("view: %d %v", st, body)
	}
	if offlineScan(t, body["qr"].(string)) != sess["verification_data"] {
		t.Fatal("page QR differs")
	}
	other := "A" // a different last character, whatever the token ends with
	if strings.HasSuffix(token, "A") {
		other = "B"
	}
	st, body = offlineCall(t, e.srv.URL, "POST", wire.PathApproveView, map[string]any{"token": token[:len(token)-1] + other}, "")
	wantReason(t, st, body, 404, "invalid_page_link")
	st, body = offlineCall(t, e.srv.URL, "POST", wire.PathApproveVerify, map[string]any{"token": token, "otp": e.code(sess, "")}, "")
	if st != 200 || body["status"] != "succeeded" {
		t.Fatalf("verify: %d %v", st, body)
	}
	if e.status(sess) != "succeeded" {
		t.Fatal("the relying site does not see the success")
	}
}

// TestOnlineApproval: a relying site asks, the phone fetches the text and
// signs its decision over the text's hash, and the record says what was
// approved.
func TestOnlineApproval(t *testing.T) {
	e := newOfflineEnv(t, func(c *testConfig) { c.Offline.ApprovalTTL = time.Minute })
	ctx := context.Background()
	text := "Pay CHF 1'250.00 to Muster AG\nIBAN CH93 0076 2011 6238 5295 7"
	st, a := e.api("POST", wire.PathApprovals, map[string]any{"user_id": e.uid, "text": text})
	if st != 201 || a["status"] != "pending" || a["text_sha256"] != wire.TextSHA256(text) {
		t.Fatalf("create: %d %v", st, a)
	}
	url := offlineScan(t, a["qr"].(string))
	if url != a["url"] || !strings.HasPrefix(url, e.srv.URL+wire.Prefix(wire.PathTransactionScan)) {
		t.Fatalf("QR %q, url %v", url, a["url"])
	}
	id := a["id"].(string)

	// The relying site waits (long poll) while the phone scans.
	scanned := make(chan map[string]any, 1)
	go func() {
		_, v := offlineCall(t, e.srv.URL, "GET", wire.Prefix(wire.PathApproval)+id+"?wait=20", nil, "Bearer "+offlineAPIToken)
		scanned <- v
	}()

	// A phone of another account may not even see it.
	other := newPhone(t, e.srv, "+1 202 555 0100")
	signUp(t, e.srv, other)
	if _, err := offlineDevice(e.srv, other, e.clock).FetchTransaction(ctx, url); qrauth.ErrorReason(err) != "not_your_transaction" {
		t.Fatalf("other account: %v", err)
	}
	tx, err := e.dev.FetchTransaction(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if tx.Info.Text != text || tx.Info.ID != id {
		t.Fatalf("%+v", tx.Info)
	}
	if v := <-scanned; v["scanned"] != true || v["status"] != "pending" {
		t.Fatalf("long poll: %v", v)
	}

	// A signature over another text, or from another key, is refused.
	before := snapshot(t, e.srv.DB)
	forged := *tx
	forged.Info.Text = "Pay CHF 1.00 to Muster AG"
	if _, err := forged.Approve(ctx); qrauth.ErrorReason(err) != "bad_signature" {
		t.Fatalf("signature over another text: %v", err)
	}
	if snapshot(t, e.srv.DB) != before {
		t.Fatal("a refused decision changed the store")
	}

	decided := make(chan map[string]any, 1)
	go func() {
		_, v := offlineCall(t, e.srv.URL, "GET", wire.Prefix(wire.PathApproval)+id+"?wait=20&scanned=true", nil, "Bearer "+offlineAPIToken)
		decided <- v
	}()
	if st, err := tx.Approve(ctx); err != nil || st != offline.ApprovalApproved {
		t.Fatalf("approve: %v %v", st, err)
	}
	v := <-decided
	if v["status"] != "approved" || v["decided_by"] != string(e.p.id) || v["text"] != text {
		t.Fatalf("status: %v", v)
	}
	// The record says which text was approved, and anyone can check it.
	sig, _ := base64.RawURLEncoding.DecodeString(v["signature"].(string))
	signed := v["signed_bytes"].(string)
	if !strings.Contains(signed, "text-sha256="+wire.TextSHA256(text)+"\n") || !strings.HasPrefix(signed, "qrauth-v1 transaction\n") {
		t.Fatalf("signed bytes %q", signed)
	}
	d := wire.TransactionDecision{Origin: e.srv.URL, TransactionID: id, TextSHA256: wire.TextSHA256(text), DeviceID: e.p.id, Decision: "approve"}
	if err := d.Verify(e.p.pub, v["signature"].(string)); err != nil || len(sig) != 64 || string(d.SignedBytes()) != signed {
		t.Fatalf("recorded signature: %v", err)
	}
	events, _ := e.srv.DB.ListAudit(ctx, qrauth.AuditFilter{UserID: e.uid})
	if last := events[len(events)-1]; last.Type != offline.AuditApprovalApproved || !strings.Contains(last.Detail, wire.TextSHA256(text)) {
		t.Fatalf("audit %+v", last)
	}
	// Decided once only.
	if _, err := tx.Deny(ctx); qrauth.ErrorReason(err) != "approval_approved" {
		t.Fatalf("second decision: %v", err)
	}

	// Deny, cancel, expiry.
	// The other account uses the same e-mail address (signUp fills in
	// Ada's), so the address alone is ambiguous now.
	st, body := e.api("POST", wire.PathApprovals, map[string]any{"email": "ada@example.com", "text": "Transfer all"})
	wantReason(t, st, body, 409, "ambiguous_email")
	_, a = e.api("POST", wire.PathApprovals, map[string]any{"user_id": e.uid, "text": "Transfer all"})
	tx, err = e.dev.FetchTransaction(ctx, a["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := tx.Deny(ctx); err != nil || st != offline.ApprovalDenied {
		t.Fatalf("deny: %v %v", st, err)
	}
	_, a = e.api("POST", wire.PathApprovals, map[string]any{"user_id": e.uid, "text": "Cancel me"})
	if st, v := e.api("POST", wire.Path(wire.PathApprovalCancel, a["id"].(string)), nil); st != 200 || v["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", st, v)
	}
	if _, err := e.dev.FetchTransaction(ctx, a["url"].(string)); qrauth.ErrorReason(err) != "approval_cancelled" {
		t.Fatalf("fetch cancelled: %v", err)
	}
	_, a = e.api("POST", wire.PathApprovals, map[string]any{"user_id": e.uid, "text": "Too late"})
	tx, err = e.dev.FetchTransaction(ctx, a["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.advance(time.Minute)
	if _, err := tx.Approve(ctx); qrauth.ErrorReason(err) != "approval_expired" {
		t.Fatalf("approve expired: %v", err)
	}
	if _, v := e.api("GET", wire.Prefix(wire.PathApproval)+a["id"].(string), nil); v["status"] != "expired" {
		t.Fatalf("%v", v)
	}

	// Refused texts.
	for _, tc := range []struct{ text, reason string }{
		{"", "text_empty"}, {strings.Repeat("x", 1001), "text_too_long"}, {"a\u202eb", "text_control_character"},
	} {
		st, body = e.api("POST", wire.PathApprovals, map[string]any{"user_id": e.uid, "text": tc.text})
		wantReason(t, st, body, 400, tc.reason)
	}
}

// TestOnlineApprovalPage: the page shows the text and the QR code, and
// follows the decision.
func TestOnlineApprovalPage(t *testing.T) {
	e := newOfflineEnv(t, nil)
	_, a := e.api("POST", wire.PathApprovals, map[string]any{"user_id": e.uid, "text": "Pay CHF 5 to Carol"})
	page := a["page_url"].(string)
	token := page[strings.Index(page, "#")+1:]
	st, v := offlineCall(t, e.srv.URL, "POST", wire.PathApproveView, map[string]any{"token": token}, "")
	if st != 200 || v["kind"] != "online" || v["text"] != "Pay CHF 5 to Carol" || v["status"] != "pending" {
		t.Fatalf("view: %d %v", st, v)
	}
	url := offlineScan(t, v["qr"].(string))
	if url != a["url"] {
		t.Fatalf("page QR %q, want %v", url, a["url"])
	}
	tx, err := e.dev.FetchTransaction(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Approve(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, v = offlineCall(t, e.srv.URL, "POST", wire.PathApproveView, map[string]any{"token": token, "wait": 5}, "")
	if v["status"] != "approved" || v["qr"] != nil {
		t.Fatalf("after approval: %v", v)
	}
}

func TestOfflineAdminUserList(t *testing.T) {
	e := newOfflineEnv(t, nil)
	if _, err := e.srv.DB.SetRoles(context.Background(), e.uid, []qrauth.Role{qrauth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	_, body := e.b.do("GET", wire.Prefix(wire.PathAdminUser)+string(e.uid), "")
	if m := body["user"].(map[string]any)["methods"].(map[string]any); m["offline"] != false {
		t.Fatalf("methods %v", m)
	}
	e.activate(offline.PIN, "1234")
	_, body = e.b.do("GET", wire.Prefix(wire.PathAdminUser)+string(e.uid), "")
	list := body["user"].(map[string]any)["methods"].(map[string]any)["offline"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["method"] != "OFFLINE_PIN" {
		t.Fatalf("offline %v", list)
	}
	// Before: 0 for a method without a single failure.
	if got := list[0].(map[string]any)["remaining_attempts"]; got != float64(3) {
		t.Fatalf("remaining_attempts %v, want 3 (the default -offline-max-attempts)", got)
	}
}

// TestOfflineSecretsNeverLogged: keys and codes stay out of the logs.
func TestOfflineSecretsNeverLogged(t *testing.T) {
	var logs lockedBuffer
	e := newOfflineEnv(t, func(c *testConfig) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	k := e.activate(offline.Device, "")
	sess := e.begin(offline.Device, "secret context")
	code := e.code(sess, "")
	e.verify(sess, wrongCode(code))
	e.verify(sess, code)
	out := logs.String()
	for _, secret := range []string{base64.RawURLEncoding.EncodeToString(k.Key), code, sess["page_url"].(string)} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains %q", secret)
		}
	}
}
