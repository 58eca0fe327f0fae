package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// recoveryCodesFor makes a set of recovery codes for uid through the
// account page's API, with a session made in the store.
func recoveryCodesFor(t *testing.T, m *Main, uid qrauth.UserID) []string {
	t.Helper()
	tok, _ := qrauth.RandomToken(rand.Reader, 32)
	id, _ := qrauth.NewSessionID(rand.Reader)
	now := time.Now()
	if err := m.DB.CreateSession(context.Background(), &qrauth.Session{ID: id, UserID: uid, TokenHash: qrauth.HashToken(tok),
		IP: "127.0.0.1", UserAgent: "test", CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastSeenAt: now}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", m.Server.Origin()+wire.PathRecoveryCodes, nil)
	req.Header.Set("Cookie", "qrauth_session="+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v wire.RecoveryCodes
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 || len(v.Codes) != 10 {
		t.Fatalf("codes: %d %+v %v", resp.StatusCode, v, err)
	}
	return v.Codes
}

func phoneTab(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	ctx, problems := newChromium(t)
	if err := chromedp.Run(ctx, emulation.SetDeviceMetricsOverride(390, 844, 3, true)); err != nil {
		t.Fatal(err)
	}
	return ctx, problems
}

// TestPhoneAppRecover: the phone web app's "Recover my account" links a
// new phone with a recovery code (a wrong code first keeps the form with
// plain words), and a helpdesk's QR link opened before set-up leads to the
// same screen with the code filled in. Both screens pass axe.
func TestPhoneAppRecover(t *testing.T) {
	m := runPhoneAppMain(t)
	origin := m.Server.Origin()
	uid := signUp(t, origin, "+41 79 000 00 41", "Ada Lovelace")
	codes := recoveryCodesFor(t, m, uid)

	phone, problems := phoneTab(t)
	w := watchOf(t, phone)
	phoneSetUp(t, phone, origin, "+41 79 000 00 49", "Pixel 9")
	if err := chromedp.Run(phone, chromedp.Click("#home-recover", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "recover")
	w.Check()
	var msg string
	if err := chromedp.Run(phone,
		chromedp.SendKeys("#recover-input", "0000 0000 0000 0000", chromedp.ByQuery),
		chromedp.Click("#recover-submit", chromedp.ByQuery),
		chromedp.WaitVisible("#recover-error", chromedp.ByQuery),
		chromedp.Text("#recover-error", &msg, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "not right or was already used") {
		t.Fatalf("wrong code says %q", msg)
	}
	w.Check()
	var text string
	if err := chromedp.Run(phone,
		chromedp.SetValue("#recover-input", strings.ToLower(codes[2]), chromedp.ByQuery),
		chromedp.Click("#recover-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "result")
	if err := chromedp.Run(phone, chromedp.Text("#result-text", &text, chromedp.ByQuery)); err != nil ||
		!strings.Contains(text, "Ada Lovelace’s account") || !strings.Contains(text, "9 recovery codes are left") {
		t.Fatalf("result %q (%v)", text, err)
	}
	devs, err := m.DB.FindDevicesByUser(context.Background(), uid)
	if err != nil || len(devs) != 2 || devs[1].Name != "Pixel 9" {
		t.Fatalf("devices after recovery: %+v %v", devs, err)
	}
	// The wrong code above and the code's use were the only failed request.
	for _, p := range w.Problems() {
		if !strings.Contains(p, wire.PathAppRecover) || !strings.Contains(p, "401") {
			t.Errorf("unexpected: %s", p)
		}
	}

	// A helpdesk's link code, opened as its QR code's URL on a phone that
	// is not set up yet.
	var out, errOut bytes.Buffer
	if code := runAdmin(context.Background(), []string{"-data", m.DataPath, "users", "recover", string(uid)}, &out, &errOut); code != 0 {
		t.Fatalf("users recover: %d %q", code, errOut.String())
	}
	link := regexp.MustCompile(`(?m)^  ([0-9A-Z]{4}(-[0-9A-Z]{4}){3})$`).FindStringSubmatch(out.String())
	if link == nil {
		t.Fatalf("no code in %q", out.String())
	}
	phone2, problems2 := phoneTab(t)
	if err := chromedp.Run(phone2, chromedp.Navigate(wire.RecoverURL(origin, link[1]))); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone2, "setup")
	var filled, hash string
	if err := chromedp.Run(phone2,
		chromedp.SendKeys("#setup-phone", "+41 79 000 00 48", chromedp.ByQuery),
		chromedp.Click("#setup-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone2, "recover")
	if err := chromedp.Run(phone2, chromedp.Value("#recover-input", &filled, chromedp.ByQuery),
		chromedp.Evaluate(`location.hash`, &hash)); err != nil || filled != link[1] || hash != "" {
		t.Fatalf("recover screen holds %q, address hash %q (%v)", filled, hash, err)
	}
	if err := chromedp.Run(phone2, chromedp.Click("#recover-submit", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone2, "result")
	if devs, _ := m.DB.FindDevicesByUser(context.Background(), uid); len(devs) != 3 {
		t.Fatalf("devices after the link code: %d", len(devs))
	}
	for _, p := range append(problems(), problems2()...) {
		if !strings.Contains(p, "401") {
			t.Errorf("console problem: %s", p)
		}
	}
}

// TestPhoneAppRecoverWorkedExample: the phone web app builds and signs the
// recovery request of docs/protocol.md §9.4 exactly as the Go side does,
// and reads codes and helpdesk QR URLs as recovery.Normalize does.
func TestPhoneAppRecoverWorkedExample(t *testing.T) {
	m := MustRunMain(t)
	ctx, problems := newChromium(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(m.Server.Origin()+"/app")); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, ctx, "setup")
	var got map[string]string
	evalAsync(t, ctx, `(async () => {
		const k = await import('/static/app/keys.js');
		const p = await import('/static/app/protocol.js');
		const seed = k.fromHex('0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20');
		const pkcs8 = new Uint8Array([...k.fromHex('302e020100300506032b657004220420'), ...seed]);
		const key = await crypto.subtle.importKey('pkcs8', pkcs8, {name: 'Ed25519'}, false, ['sign']);
		const code = p.normalizeRecoveryCode('abcd efgh-jkmn-pqrs');
		const bytes = await p.recoverBytes({origin: 'https://login.example.com', code, device: 'd_ZbYGc9btiEvwHCwiLYKtoA',
			phone: '73913b6509ff7e465e4329d705195340fa781798ab404034fa9272cea3a93edd', name: 'Pixel 9'});
		const out = {code, bytes: new TextDecoder().decode(bytes), sig: k.b64url(await k.sign(key, bytes))};
		out.lookalikes = p.normalizeRecoveryCode('oOiI-lL00-1111-2222');
		out.short = String(p.normalizeRecoveryCode('ABCD-EFGH'));
		out.url = p.parseRecoverURL(location.origin, location.origin + '/app#recover=ABCD-EFGH-JKMN-PQRS');
		try { p.parseRecoverURL(location.origin, 'https://evil.example/app#recover=ABCD-EFGH-JKMN-PQRS'); out.foreign = 'accepted'; } catch (e) { out.foreign = e.reason; }
		return out;
	})()`, &got)
	want := map[string]string{
		"code": "ABCDEFGHJKMNPQRS",
		"bytes": "qrauth-v1 recover\norigin=https://login.example.com\ncode-sha256=f598056127fcd4387651a49b3a4235d8ce50d71f4091068df51511cfc10f388f\n" +
			"device=d_ZbYGc9btiEvwHCwiLYKtoA\nphone=73913b6509ff7e465e4329d705195340fa781798ab404034fa9272cea3a93edd\nname=Pixel 9\n",
		"sig":        "AzD_DLNQCATG7HzsvPpl2Gzcy9V7Id0NQjolwUWo5rWWamZmwoGq1HBEv5uaTkiGXRDDOa-D-G6-ZAXZcHqSCw",
		"lookalikes": "0011110011112222",
		"short":      "null",
		"url":        "ABCDEFGHJKMNPQRS",
		"foreign":    "foreign_origin",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(p, "\n"))
	}
}
