package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/wire"
)

// chromiumSignIn gives the tab a session of uid, made in the store as a
// sign-in would make it.
func chromiumSignIn(t *testing.T, ctx context.Context, m *Main, uid qrauth.UserID) qrauth.SessionID {
	t.Helper()
	tok, err := qrauth.RandomToken(rand.Reader, 32)
	if err != nil {
		t.Fatal(err)
	}
	id, err := qrauth.NewSessionID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := m.DB.CreateSession(context.Background(), &qrauth.Session{ID: id, UserID: uid, TokenHash: qrauth.HashToken(tok),
		IP: "127.0.0.1", UserAgent: "test", CreatedAt: now, ExpiresAt: now.Add(time.Hour), LastSeenAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, network.SetCookie("qrauth_session", tok).WithURL(m.Server.Origin()+"/").WithHTTPOnly(true)); err != nil {
		t.Fatal(err)
	}
	return id
}

func visit(t *testing.T, ctx context.Context, url, ready string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Navigate(url), chromedp.WaitVisible(ready, chromedp.ByQuery)); err != nil {
		var where string
		chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate(`location.pathname + ' ' + ((document.querySelector('main') || {}).dataset || {}).state`, &where))
		t.Fatalf("%s: waiting for %s (at %q): %v", url, ready, where, err)
	}
}

// TestBrowserPagesAnonymous opens every page a person meets before signing
// in, with every flow on: axe-core finds nothing serious, and the console
// and network stay clean (the login and badge pages used to ask /api/me and
// log its 401). The 404 page is HTML with a title and a language.
func TestBrowserPagesAnonymous(t *testing.T) {
	m := badgeRunMain(t, "-offline", "-oath")
	origin := m.Server.Origin()
	ctx, problems := newChromium(t)
	w := watchOf(t, ctx)
	for _, p := range []struct{ path, ready string }{
		{wire.PathLogin, `#login[data-state="waiting"]`},
		{wire.PathBadge, `#badge[data-state="start"]`},
		{wire.PathOffline, `#offline[data-state="identify"]`},
		{wire.Prefix(wire.PathScan) + strings.Repeat("A", 43), `#scan`},
		{wire.Prefix(wire.PathTransactionScan) + strings.Repeat("A", 43), `#tx-scan`},
	} {
		visit(t, ctx, origin+p.path, p.ready)
		w.Check()
		if p := w.Problems(); len(p) > 0 {
			t.Errorf("%s: console and network problems:\n%s", p, strings.Join(p, "\n"))
		}
	}
	var lead string
	if err := chromedp.Run(ctx, chromedp.Text("#tx-scan .lead", &lead, chromedp.ByQuery)); err != nil || !strings.Contains(lead, "transaction approval") || strings.Contains(lead, "sign-in code") {
		t.Errorf(wire.Prefix(wire.PathTransactionScan)+" page says %q (%v)", lead, err)
	}

	// An unknown address: the HTML page, and its own 404 is the only error.
	visit(t, ctx, origin+"/no/such/page", `#not-found`)
	w.Check()
	var title, lang string
	if err := chromedp.Run(ctx, chromedp.Title(&title), chromedp.Evaluate(`document.documentElement.lang`, &lang)); err != nil {
		t.Fatal(err)
	}
	if title != "Page not found · qrauth" || lang != "en" {
		t.Errorf("404 page: title %q, lang %q", title, lang)
	}
	for _, p := range w.Problems() {
		if !strings.Contains(p, "/no/such/page") {
			t.Errorf("404 page: %s", p)
		}
	}
	// Its link goes home.
	if err := chromedp.Run(ctx, chromedp.Click(`#not-found a[href="/"]`, chromedp.ByQuery)); err != nil && !strings.Contains(err.Error(), "navigated or closed") {
		t.Fatal(err)
	}
	waitState(t, ctx, "waiting")
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestBrowserAdminAndAccount: the account page and, at a phone's 390 px,
// the admin page pass axe-core; admin rows do not squeeze names and ids
// into a narrow column; an account page whose session is ended elsewhere
// shows that it is signed out within a few seconds, without a reload.
func TestBrowserAdminAndAccount(t *testing.T) {
	m := badgeRunMain(t, "-offline", "-oath")
	origin := m.Server.Origin()
	uid := signUp(t, origin, "+41 79 000 00 21", "Ada Lovelace")
	signUp(t, origin, "+41 79 000 00 22", "Grace Brewster Murray Hopper")
	if _, err := m.DB.SetRoles(context.Background(), uid, []qrauth.Role{qrauth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	ctx, problems := newChromium(t)
	w := watchOf(t, ctx)
	sid := chromiumSignIn(t, ctx, m, uid)

	visit(t, ctx, origin+wire.PathAccount, `#account[data-state="ready"]`)
	w.Check()

	if err := chromedp.Run(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	visit(t, ctx, origin+wire.PathAdmin, `#admin[data-state="ready"]`)
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#users .item-actions button`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	w.Check()
	var widths []float64
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...document.querySelectorAll('#users .item-body')].map(e => e.getBoundingClientRect().width)`, &widths)); err != nil {
		t.Fatal(err)
	}
	if len(widths) != 2 {
		t.Fatalf("admin rows: %v", widths)
	}
	for _, wd := range widths {
		// The card is about 390 - 2×12 - 2×16 px wide at this size.
		if wd < 200 {
			t.Errorf("admin row text is %.0f px wide at 390 px (names wrap every few letters)", wd)
		}
	}
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1200, 860)); err != nil {
		t.Fatal(err)
	}

	// The session ends elsewhere (here: straight in the store, as a
	// sign-out from another browser would).
	visit(t, ctx, origin+wire.PathAccount, `#account[data-state="ready"]`)
	if err := m.DB.DeleteSession(context.Background(), sid); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Run(wctx, chromedp.WaitVisible(`#signed-out`, chromedp.ByQuery),
		chromedp.WaitVisible(`#account[data-state="signed-out"]`, chromedp.ByQuery)); err != nil {
		t.Fatalf("the account page did not notice the ended session: %v", err)
	}
	var shown bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...document.querySelectorAll('#account > .card')].some(e => e.offsetParent !== null) || !document.querySelector('#logout').hidden`, &shown)); err != nil || shown {
		t.Errorf("signed-out page still shows account data or the sign-out button (%v)", err)
	}
	w.Check()
	// The one failed request is the check that found the session gone.
	for _, p := range w.Problems() {
		if !strings.Contains(p, wire.PathMe) || !strings.Contains(p, "401") {
			t.Errorf("unexpected: %s", p)
		}
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestBrowserVerifySaysFirstStep: the second-step page says what the first
// step was. After a code from the phone it used to say "Your phone approved
// the sign-in".
func TestBrowserVerifySaysFirstStep(t *testing.T) {
	m := offlineRunMain(t, "-oath-policy", "if-enrolled")
	origin := m.Server.Origin()
	dev := offlineSignUp(t, origin, qrauth.Profile{Name: "Grace Hopper", Email: "grace@example.com"})
	k, err := dev.ActivateOffline(context.Background(), offline.PIN, appclient.ActivateOptions{PIN: "8080"})
	if err != nil {
		t.Fatal(err)
	}
	keys := &appclient.OfflineKeys{}
	keys.Put(*k)
	// An authenticator from an activation letter makes OATH the second step.
	if code := runAdmin(context.Background(), []string{"-data", m.DataPath, "oath", "letter", string(k.UserID)}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("oath letter: exit %d", code)
	}

	ctx, problems := newChromium(t)
	visit(t, ctx, origin+wire.PathOffline, `#offline[data-state="identify"]`)
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#identifier", "grace@example.com", chromedp.ByQuery),
		chromedp.Click("#identify-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitOfflineState(t, ctx, "offline", "code")
	text, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#offline-qr")))
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := appclient.OfflineCode(text, keys, "8080")
	if err != nil {
		t.Fatal(err)
	}
	var who string
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#otp", code, chromedp.ByQuery),
		chromedp.WaitVisible(`#verify[data-state="verify"]`, chromedp.ByQuery),
		chromedp.Text("#verify-who", &who, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("verify page: %v", err)
	}
	if !strings.Contains(who, "Grace Hopper") || !strings.Contains(who, "code from the phone was accepted") || strings.Contains(who, "approved") {
		t.Errorf("verify page says %q after an offline code", who)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}
