package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/recovery"
	"github.com/qrauth/qrauth/wire"
)

// TestBrowserRecoveryCodes: an account without recovery codes is offered
// them in a banner; the codes are shown once, print alone, go when the
// person says they are saved, and one of them links a new phone. A
// helpdesk user's /admin issues a link code with its QR image. Every page
// state passes axe-core.
func TestBrowserRecoveryCodes(t *testing.T) {
	m := MustRunMain(t)
	origin := m.Server.Origin()
	uid := signUp(t, origin, "+41 79 000 00 31", "Ada Lovelace")
	ctx, problems := newChromium(t)
	w := watchOf(t, ctx)
	chromiumSignIn(t, ctx, m, uid)

	visit(t, ctx, origin+wire.PathAccount, `#recovery-banner`)
	w.Check()
	var state string
	if err := chromedp.Run(ctx, chromedp.Text(`#recovery-state`, &state, chromedp.ByQuery)); err != nil || state != "No recovery codes yet" {
		t.Fatalf("status %q (%v)", state, err)
	}
	var codes []string
	if err := chromedp.Run(ctx,
		chromedp.Click(`#recovery-banner-generate`, chromedp.ByQuery),
		chromedp.WaitVisible(`#recovery-sheet`, chromedp.ByQuery),
		chromedp.WaitNotVisible(`#recovery-banner`, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll('#recovery-codes li')].map(e => e.textContent)`, &codes),
	); err != nil {
		t.Fatal(err)
	}
	if len(codes) != recovery.SetSize {
		t.Fatalf("codes shown: %q", codes)
	}
	for _, c := range codes {
		if _, err := recovery.Normalize(c); err != nil || len(c) != 19 {
			t.Fatalf("code %q: %v", c, err)
		}
	}
	w.Check()

	// Print: the button prints, and in print media only the sheet shows.
	var printed bool
	var vis []string
	if err := chromedp.Run(ctx,
		chromedp.Evaluate(`window.print = () => { window.__printed = true }`, nil),
		chromedp.Click(`#recovery-print`, chromedp.ByQuery),
		chromedp.Evaluate(`!!window.__printed && document.body.classList.contains('print-recovery')`, &printed),
		emulation.SetEmulatedMedia().WithMedia("print"),
		chromedp.Evaluate(`['#profile', '#devices-panel', '#recovery-codes li', '.recovery-actions'].map(s => getComputedStyle(document.querySelector(s)).visibility + '/' + getComputedStyle(document.querySelector(s)).display)`, &vis),
		emulation.SetEmulatedMedia().WithMedia(""),
	); err != nil {
		t.Fatal(err)
	}
	if !printed || !strings.HasPrefix(vis[0], "hidden") || !strings.HasPrefix(vis[1], "hidden") ||
		!strings.HasPrefix(vis[2], "visible") || !strings.HasSuffix(vis[3], "none") {
		t.Fatalf("print view: printed %v, profile/devices/code/button %v", printed, vis)
	}

	// Saved: the codes leave the page.
	var left int
	if err := chromedp.Run(ctx,
		chromedp.Click(`#recovery-done`, chromedp.ByQuery),
		chromedp.WaitNotVisible(`#recovery-sheet`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#recovery-codes li').length`, &left),
		chromedp.Text(`#recovery-state`, &state, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if left != 0 || !strings.HasPrefix(state, "10 of 10 codes left") {
		t.Fatalf("after saving: %d codes in the page, status %q", left, state)
	}
	w.Check()

	// A code from the page links a new phone.
	dev, err := appclient.Init(t.Context(), appclient.InitOptions{Server: origin, Phone: "+41 79 000 00 39"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := dev.Recover(t.Context(), codes[9]); err != nil || r.UserID != uid {
		t.Fatalf("recover with a code of the page: %+v %v", r, err)
	}

	// The helpdesk's button on /admin.
	hid := signUp(t, origin, "+41 79 000 00 32", "Grace Hopper")
	if _, err := m.DB.SetRoles(context.Background(), hid, []qrauth.Role{qrauth.RoleHelpdesk}); err != nil {
		t.Fatal(err)
	}
	chromiumSignIn(t, ctx, m, hid)
	visit(t, ctx, origin+wire.PathAdmin, `#admin[data-state="ready"]`)
	var code string
	if err := chromedp.Run(ctx,
		chromedp.Click(`button[data-recovery-link="`+string(uid)+`"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`.recovery-link img`, chromedp.ByQuery),
		chromedp.Text(`.recovery-link [data-recovery-code]`, &code, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	w.Check()
	other, err := appclient.Init(t.Context(), appclient.InitOptions{Server: origin, Phone: "+41 79 000 00 38"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := other.Recover(t.Context(), code); err != nil || r.UserID != uid || r.Kind != recovery.KindLink {
		t.Fatalf("recover with the admin page's link code: %+v %v", r, err)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}
