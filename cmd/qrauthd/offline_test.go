package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/wire"
)

const offlineTestToken = "qrauthd-test-relying-site-token-0123456789"

// offlineRunMain runs the real program with offline codes on: a master key
// file and a relying-site token file, as an operator would set it up.
func offlineRunMain(t *testing.T, extra ...string) *Main {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokenFile, []byte("# relying sites\n"+offlineTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return MustRunMain(t, append([]string{"-key-file", mustKeyFile(t), "-offline", "-offline-api-token-file", tokenFile}, extra...)...)
}

// offlineSignUp creates an account through the protocol (a raw browser
// socket and the real appclient) and returns the phone.
func offlineSignUp(t *testing.T, origin string, profile qrauth.Profile) *appclient.Device {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h := http.Header{"Origin": {origin}, "Cookie": {"qrauth_bind=" + issuedBind(t, origin)}}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(origin, "http")+wire.PathBrowserSocket, h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var qr wire.ServerMessage
	if err := ws.ReadJSON(&qr); err != nil {
		t.Fatal(err)
	}
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 555 12 34", Name: "Pixel 8"})
	if err != nil {
		t.Fatal(err)
	}
	scan, err := dev.Scan(ctx, qr.URL, appclient.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer scan.Close()
	if done, err := scan.Approve(ctx, appclient.ApproveOptions{Profile: &profile}); err != nil || done.Result != wire.ResultSignedUp {
		t.Fatalf("sign-up: %+v %v", done, err)
	}
	return dev
}

func offlineAPI(t *testing.T, origin, method, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, origin+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+offlineTestToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %v %v", method, path, resp.StatusCode, v, err)
	}
	return v
}

func waitOfflineState(t *testing.T, ctx context.Context, root, state string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#`+root+`[data-state="`+state+`"]`, chromedp.ByQuery)); err != nil {
		var got string
		chromedp.Run(context.WithoutCancel(ctx), chromedp.AttributeValue("#"+root, "data-state", &got, nil, chromedp.ByQuery))
		t.Fatalf("waiting for %s state %s (page is %q): %v", root, state, got, err)
	}
}

// TestBrowserOfflineSignIn drives the "sign in with a code" page in
// headless Chromium: from the login page's link, identify by e-mail, read
// the QR code the page shows, compute the code with the phone library and
// no network, type a wrong code and then the right one, and land signed in
// on the account page.
func TestBrowserOfflineSignIn(t *testing.T) {
	m := offlineRunMain(t, "-offline-otp-length", "8")
	origin := m.Server.Origin()
	dev := offlineSignUp(t, origin, qrauth.Profile{Name: "Grace Hopper", Email: "grace@example.com"})
	keys := &appclient.OfflineKeys{}
	k, err := dev.ActivateOffline(context.Background(), offline.PIN, appclient.ActivateOptions{PIN: "8080"})
	if err != nil {
		t.Fatal(err)
	}
	keys.Put(*k)

	ctx, problems := newChromium(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(origin+wire.PathLogin)); err != nil {
		t.Fatal(err)
	}
	// The link navigates; its own bookkeeping may be cut short.
	if err := chromedp.Run(ctx, chromedp.Click(`#other-ways a[href="/offline"]`, chromedp.ByQuery)); err != nil && !strings.Contains(err.Error(), "navigated or closed") {
		t.Fatal(err)
	}
	waitOfflineState(t, ctx, "offline", "identify")
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#identifier", "grace@example.com", chromedp.ByQuery),
		chromedp.Click("#identify-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitOfflineState(t, ctx, "offline", "code")
	png := shownQR(t, ctx, "#offline-qr")
	saveScreenshot(t, ctx, "offline.png")

	// The phone: no network from here on, only the keys it keeps.
	text, err := appclient.DecodeQRImage(bytes.NewReader(png))
	if err != nil {
		t.Fatal(err)
	}
	code, ch, err := appclient.OfflineCode(text, keys, "8080")
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != 8 || ch.Context != "Sign in to "+strings.TrimPrefix(origin, "http://") {
		t.Fatalf("code %q, context %q", code, ch.Context)
	}
	var shown string
	if err := chromedp.Run(ctx, chromedp.Text("#steps-context", &shown, chromedp.ByQuery)); err != nil || shown != ch.Context {
		t.Fatalf("page says %q, phone says %q (%v)", shown, ch.Context, err)
	}

	// A wrong code: the page says so and keeps the QR code.
	wrong := []byte(code)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	var msg string
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#otp", string(wrong), chromedp.ByQuery),
		chromedp.WaitVisible("#code-error", chromedp.ByQuery),
		chromedp.Text("#code-error", &msg, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "2 attempts left") {
		t.Fatalf("wrong-code message %q", msg)
	}
	waitOfflineState(t, ctx, "offline", "code")

	// The right one signs in; the page submits a full code by itself.
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#otp", code, chromedp.ByQuery),
		chromedp.WaitVisible(`#user-name`, chromedp.ByQuery),
		chromedp.Poll(`location.pathname === '/account' && document.querySelector('#user-name').textContent === 'Grace Hopper'`, nil),
	); err != nil {
		t.Fatalf("account page: %v", err)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestBrowserApprovalPage: a relying site sends the browser to the
// approval page, which shows the transaction text beside the QR code; once
// for an offline code, once for an online approval on the phone.
func TestBrowserApprovalPage(t *testing.T) {
	m := offlineRunMain(t)
	origin := m.Server.Origin()
	dev := offlineSignUp(t, origin, qrauth.Profile{Name: "Ada", Email: "ada@example.com"})
	keys := &appclient.OfflineKeys{}
	k, err := dev.ActivateOffline(context.Background(), offline.Device, appclient.ActivateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys.Put(*k)
	ctx, problems := newChromium(t)

	text := "Pay CHF 250.00 to Muster AG\nIBAN CH93 0076 2011 6238 5295 7"
	sess := offlineAPI(t, origin, "POST", wire.PathOfflineSessions, map[string]any{"email": "ada@example.com", "method": "OFFLINE_DEVICE", "context": text})
	var shown string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(sess["page_url"].(string)),
		chromedp.WaitVisible(`#approve[data-state="offline"]`, chromedp.ByQuery),
		chromedp.Text("#tx-text", &shown, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if shown != text {
		t.Fatalf("page shows %q", shown)
	}
	saveScreenshot(t, ctx, "approve.png")
	vd, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#tx-qr")))
	if err != nil {
		t.Fatal(err)
	}
	code, ch, err := appclient.OfflineCode(vd, keys, "")
	if err != nil || ch.Context != text {
		t.Fatalf("%q %v", ch.Context, err)
	}
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#tx-otp", code, chromedp.ByQuery),
		chromedp.Click("#tx-code-submit", chromedp.ByQuery),
		chromedp.WaitVisible(`#approve[data-state="done"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if v := offlineAPI(t, origin, "GET", wire.Prefix(wire.PathOfflineSession)+sess["id"].(string), nil); v["status"] != "succeeded" {
		t.Fatalf("relying site sees %v", v["status"])
	}

	// Online: the page waits for the phone's signed decision.
	tx := offlineAPI(t, origin, "POST", wire.PathApprovals, map[string]any{"email": "ada@example.com", "text": "Close account 42"})
	if err := chromedp.Run(ctx,
		chromedp.Navigate("about:blank"), // the same page with another fragment would not load again
		chromedp.Navigate(tx["page_url"].(string)),
		chromedp.WaitVisible(`#approve[data-state="online"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	url, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#tx-qr")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := dev.FetchTransaction(ctx, url)
	if err != nil || got.Info.Text != "Close account 42" {
		t.Fatalf("%+v %v", got, err)
	}
	if err := chromedp.Run(ctx, chromedp.Poll(`document.querySelector('#online-title').textContent.startsWith('Scanned')`, nil, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		var title, state string
		chromedp.Run(context.WithoutCancel(ctx), chromedp.Text("#online-title", &title, chromedp.ByQuery), chromedp.AttributeValue("#approve", "data-state", &state, nil, chromedp.ByQuery))
		t.Fatalf("scanned: %v (title %q, state %q, problems %v)", err, title, state, problems())
	}
	if _, err := got.Approve(ctx); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#approve[data-state="done"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestOfflineFlagsRefused: the settings that cannot work stop the start of
// a server with the flow on (with it off, they are not used).
func TestOfflineFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-offline"}, "qrauthd genkey"},
		{[]string{"-offline", "-offline-otp-length", "3"}, "OTP length 3"},
		{[]string{"-offline", "-offline-otp-length", "10"}, "OTP length 10"},
	} {
		m := NewMain()
		args := append([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "qrauth.db"), "-admin-socket", "off"}, tc.args...)
		if err := m.ParseFlags(args, io.Discard); err != nil {
			t.Fatal(err)
		}
		m.LogOutput = io.Discard
		err := m.Run()
		if err == nil {
			m.Close()
			t.Fatalf("%v: started", tc.args)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	// A token file open to others is refused at parse time.
	f := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(f, []byte(strings.Repeat("t", 40)), 0o644)
	if err := NewMain().ParseFlags([]string{"-offline-api-token-file", f}, io.Discard); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("open token file: %v", err)
	}
}

// TestAdminOfflineCommands: the operator lists and unlocks methods.
func TestAdminOfflineCommands(t *testing.T) {
	m := offlineRunMain(t)
	origin := m.Server.Origin()
	dev := offlineSignUp(t, origin, qrauth.Profile{Name: "Ada", Email: "ada@example.com"})
	if _, err := dev.ActivateOffline(context.Background(), offline.PIN, appclient.ActivateOptions{PIN: "1234"}); err != nil {
		t.Fatal(err)
	}
	admin := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runAdmin(context.Background(), append([]string{"-data", m.DataPath}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	_, users, _ := admin("users")
	uid := strings.Fields(strings.Split(users, "\n")[1])[0]
	if !strings.Contains(users, "offline") {
		t.Fatalf("users: %s", users)
	}
	// Three wrong codes lock the PIN method.
	for range 3 {
		s := offlineAPI(t, origin, "POST", wire.PathOfflineSessions, map[string]any{"user_id": uid, "method": "OFFLINE_PIN", "context": "x"})
		offlineAPI(t, origin, "POST", wire.Path(wire.PathOfflineSessionVerify, s["id"].(string)), map[string]any{"otp": "000000"})
	}
	if code, out, errOut := admin("offline", uid); code != 0 || !strings.Contains(out, "LOCKED") || !strings.Contains(out, "Pixel 8") {
		t.Fatalf("offline: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := admin("offline-unlock", uid, string(dev.ID()), "offline-pin"); code != 0 {
		t.Fatalf("unlock: %d %q", code, errOut)
	}
	if code, _, errOut := admin("offline-unlock", uid, string(dev.ID()), "offline-pin"); code != 1 || !strings.Contains(errOut, "not_locked") {
		t.Fatalf("unlock twice: %d %q", code, errOut)
	}
	if code, _, _ := admin("offline-unlock", uid); code != 2 {
		t.Fatal("usage")
	}
	if _, out, _ := admin("audit", uid); !strings.Contains(out, "offline_locked") || !strings.Contains(out, "offline_unlocked") {
		t.Fatalf("audit: %s", out)
	}
}
