package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/wire"
)

// oathRunMain runs the real program with OATH on, a master key in a key
// file, and args added to the usual test flags.
func oathRunMain(t *testing.T, args ...string) *Main {
	t.Helper()
	return MustRunMain(t, append([]string{"-key-file", mustKeyFile(t), "-oath-policy", "if-enrolled"}, args...)...)
}

func TestOATHOwnOTPMatchesRFC(t *testing.T) {
	if got := testutil.OTP([]byte("12345678901234567890"), "SHA1", 6, 1); got != "287082" {
		t.Fatalf("RFC 4226 counter 1: %s", got)
	}
	if got := testutil.OTP([]byte("12345678901234567890"), "SHA1", 8, 59/30); got != "94287082" {
		t.Fatalf("RFC 6238 T=59: %s", got)
	}
}

// oathScanPage scans the login page's QR code with dev and approves, as
// a sign-up (with a profile) or a sign-in.
func oathScanPage(t *testing.T, ctx context.Context, dev *appclient.Device, wantMode string) {
	t.Helper()
	waitState(t, ctx, "waiting")
	url, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#qr")))
	if err != nil {
		t.Fatal(err)
	}
	scan, err := dev.Scan(ctx, url, appclient.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer scan.Close()
	if scan.Challenge.Mode != wantMode {
		t.Fatalf("mode %s, want %s", scan.Challenge.Mode, wantMode)
	}
	opts := appclient.ApproveOptions{}
	if wantMode == wire.ModeSignUp {
		opts.Profile = &qrauth.Profile{Name: "Ada Lovelace", Email: "ada@example.com"}
	}
	if res, err := scan.Approve(ctx, opts); err != nil || res.Type != wire.MsgDone {
		t.Fatalf("approve: %+v %v", res, err)
	}
}

// TestOATHBrowserEnrolAndSignIn drives the real pages in headless
// Chromium: sign up, enrol an authenticator from the QR code the account
// page shows (decoded from its image, the code computed independently),
// sign out, and sign in again with the QR code and an authenticator code.
func TestOATHBrowserEnrolAndSignIn(t *testing.T) {
	m := oathRunMain(t)
	origin := m.Server.Origin()
	ctx, problems := newChromium(t)
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 123 45 67", Name: "Pixel 8"})
	if err != nil {
		t.Fatal(err)
	}
	scanPage := func(mode string) { oathScanPage(t, ctx, dev, mode) }

	if err := chromedp.Run(ctx, chromedp.Navigate(origin+wire.PathLogin)); err != nil {
		t.Fatal(err)
	}
	scanPage(wire.ModeSignUp)

	// Enrol from the account page.
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible(`#oath-panel[data-state="off"]`, chromedp.ByQuery),
		chromedp.Click("#oath-setup", chromedp.ByQuery),
	); err != nil {
		t.Fatalf("account page: %v", err)
	}
	text, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#oath-qr-img")))
	if err != nil {
		t.Fatalf("decode the page's QR code: %v", err)
	}
	k := testutil.ParseOTPAuth(t, text)
	if k.URI.Path != "/qrauth:ada@example.com" || k.URI.Query().Get("issuer") != "qrauth" {
		t.Fatalf("label and issuer of %s", k.URI)
	}
	var shown string
	if err := chromedp.Run(ctx, chromedp.Text("#oath-secret", &shown, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if strings.ReplaceAll(shown, " ", "") != k.Base32 {
		t.Fatalf("page shows key %q, the QR code holds %q", shown, k.Base32)
	}
	saveScreenshot(t, ctx, "oath-enrol.png")
	used := k.Step()
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#oath-code", k.Code(used), chromedp.ByQuery),
		chromedp.Click("#oath-confirm", chromedp.ByQuery),
		chromedp.WaitVisible(`#oath-panel[data-state="active"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("confirm: %v", err)
	}

	// Sign out, then in: QR first, then the authenticator's code.
	if err := chromedp.Run(ctx, chromedp.Click("#logout", chromedp.ByQuery)); err != nil && !strings.Contains(err.Error(), "navigated or closed") {
		t.Fatal(err)
	}
	scanPage(wire.ModeLogin)
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#verify[data-state="verify"]`, chromedp.ByQuery)); err != nil {
		t.Fatalf("verify page: %v", err)
	}
	saveScreenshot(t, ctx, "oath-verify.png")
	// The code of the enrolment is spent; the next step's code is inside
	// the window and was never used.
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#verify-code", k.Code(used+1), chromedp.ByQuery),
		chromedp.Click("#verify-submit", chromedp.ByQuery),
	); err != nil && !strings.Contains(err.Error(), "navigated or closed") {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible(`#user-name`, chromedp.ByQuery),
		chromedp.Poll(`location.pathname === '/account' && document.querySelector('#user-name').textContent === 'Ada Lovelace'`, nil),
	); err != nil {
		t.Fatalf("signed in: %v", err)
	}
	events, err := m.DB.ListAudit(context.Background(), qrauth.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if last := events[len(events)-1]; last.Type != qrauth.AuditSignIn || last.Detail != "methods qr+oath" {
		t.Fatalf("last audit event %+v", last)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestOATHBrowserRequired: under policy "required", a person without an
// authenticator sets one up on the verify page before the first session.
func TestOATHBrowserRequired(t *testing.T) {
	m := oathRunMain(t, "-oath-policy", "required")
	origin := m.Server.Origin()
	ctx, problems := newChromium(t)
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 123 45 67", Name: "Pixel 8"})
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(origin+wire.PathLogin)); err != nil {
		t.Fatal(err)
	}
	oathScanPage(t, ctx, dev, wire.ModeSignUp)
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#verify[data-state="enrol"]`, chromedp.ByQuery)); err != nil {
		t.Fatalf("verify page: %v", err)
	}
	text, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#enrol-qr")))
	if err != nil {
		t.Fatal(err)
	}
	k := testutil.ParseOTPAuth(t, text)
	saveScreenshot(t, ctx, "oath-enrol-signin.png")
	// A wrong code first: the page says so and stays.
	wrong := k.Code(k.Step() + 7)
	var msg string
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#enrol-code", wrong, chromedp.ByQuery),
		chromedp.Click("#enrol-submit", chromedp.ByQuery),
		chromedp.WaitVisible("#enrol-error", chromedp.ByQuery),
		chromedp.Text("#enrol-error", &msg, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "not right") {
		t.Fatalf("error shown: %q", msg)
	}
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#enrol-code", k.Code(k.Step()), chromedp.ByQuery),
		chromedp.Click("#enrol-submit", chromedp.ByQuery),
	); err != nil && !strings.Contains(err.Error(), "navigated or closed") {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible(`#oath-panel[data-state="active"]`, chromedp.ByQuery),
		chromedp.Poll(`location.pathname === '/account'`, nil),
	); err != nil {
		t.Fatalf("account page: %v", err)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

// oathLetterQR renders the first page of a letter to PNG with pdftoppm
// and decodes its QR code.
func oathLetterQR(t *testing.T, pdf string) string {
	t.Helper()
	if _, err := exec.LookPath("pdftoppm"); err != nil {
		t.Fatal("pdftoppm not on the PATH: install poppler-utils")
	}
	prefix := filepath.Join(t.TempDir(), "page")
	if out, err := exec.Command("pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", "-singlefile", pdf, prefix).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	f, err := os.Open(prefix + ".png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text, err := appclient.DecodeQRImage(f)
	if err != nil {
		t.Fatalf("QR code of the letter %s: %v", pdf, err)
	}
	return text
}

func TestOATHAdminCommandsAndLetter(t *testing.T) {
	m := oathRunMain(t)
	uid := signUp(t, m.Server.Origin(), "+41 79 000 00 01", "Grace Hopper")
	admin := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runAdmin(context.Background(), append([]string{"-data", m.DataPath}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, _, errOut := admin("oath", "show", string(uid)); code != 1 || !strings.Contains(errOut, "oath_not_found") {
		t.Fatalf("show before: %d %q", code, errOut)
	}
	if code, out, _ := admin("users"); code != 0 || strings.Contains(out, "oath") {
		t.Fatalf("users: %d %q", code, out)
	}

	// A letter for a user without a secret makes one.
	code, out, errOut := admin("oath", "letter", string(uid))
	letterRe := regexp.MustCompile(`^wrote (\S+\.pdf) \((a new token|the existing token) (t_\S+)\)\n$`)
	lm := letterRe.FindStringSubmatch(out)
	if code != 0 || lm == nil || lm[2] != "a new token" {
		t.Fatalf("letter: %d %q %q", code, out, errOut)
	}
	if filepath.Dir(lm[1]) != filepath.Join(filepath.Dir(m.DataPath), "letters") {
		t.Fatalf("letter written to %s", lm[1])
	}
	k := testutil.ParseOTPAuth(t, oathLetterQR(t, lm[1]))

	code, out, _ = admin("oath", "secret", string(uid))
	if code != 0 || !strings.Contains(out, "base32  "+k.Base32) || !strings.Contains(out, fmt.Sprintf("hex     %x", k.Secret)) {
		t.Fatalf("secret: %d %q (letter holds %s)", code, out, k.Base32)
	}
	// A second letter reuses the secret.
	code, out, _ = admin("oath", "letter", string(uid))
	lm2 := letterRe.FindStringSubmatch(out)
	if code != 0 || lm2 == nil || lm2[2] != "the existing token" || lm2[3] != lm[3] || lm2[1] == lm[1] {
		t.Fatalf("second letter: %d %q", code, out)
	}
	if k2 := testutil.ParseOTPAuth(t, oathLetterQR(t, lm2[1])); k2.Base32 != k.Base32 {
		t.Fatalf("second letter holds %s, want %s", k2.Base32, k.Base32)
	}

	if code, out, _ := admin("oath", "show", string(uid)); code != 0 || !strings.Contains(out, "active") || !strings.Contains(out, "from letter") {
		t.Fatalf("show: %d %q", code, out)
	}
	if code, out, _ := admin("users"); code != 0 || !strings.Contains(out, "oath") {
		t.Fatalf("users: %d %q", code, out)
	}
	if code, _, errOut := admin("oath", "unlock", string(uid)); code != 1 || !strings.Contains(errOut, "oath_not_locked") {
		t.Fatalf("unlock: %d %q", code, errOut)
	}
	if code, _, errOut := admin("oath", "delete", string(uid)); code != 0 {
		t.Fatalf("delete: %d %q", code, errOut)
	}
	if code, _, _ := admin("oath", "frobnicate", string(uid)); code != 2 {
		t.Fatalf("unknown subcommand: %d", code)
	}
	code, out, _ = admin("audit", string(uid))
	for _, ev := range []string{"oath_secret_added", "oath_letter_ordered", "oath_secret_viewed", "oath_secret_deleted"} {
		if code != 0 || !strings.Contains(out, ev) {
			t.Fatalf("audit lacks %s: %q", ev, out)
		}
	}
	if strings.Contains(out, k.Base32) {
		t.Fatal("the audit log shows the secret")
	}
}

func TestOATHNeedsMasterKey(t *testing.T) {
	if os.Getenv("QRAUTH_KEY") != "" {
		t.Skip("QRAUTH_KEY is set")
	}
	m := NewMain()
	if err := m.ParseFlags([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "qrauth.db"), "-oath"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	m.LogOutput = io.Discard
	err := m.Run()
	if err == nil {
		m.Close()
		t.Fatal("started with OATH and no master key")
	}
	if !strings.Contains(err.Error(), "qrauthd genkey") {
		t.Fatalf("error does not say how to make a key: %v", err)
	}
}

func TestOATHFlags(t *testing.T) {
	m := NewMain()
	if err := m.ParseFlags([]string{"-oath-window-behind", "0", "-oath-overwrite=false", "-oath-max-failures", "0",
		"-data", "/srv/qrauth/q.db", "-oath-digits", "8"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	c := m.OATH
	if c.Behind != -1 || c.Ahead != 1 || !c.KeepSecret || c.MaxFailures != -1 || c.Digits != 8 || c.LetterDir != "/srv/qrauth/letters" {
		t.Fatalf("%+v", c)
	}
	m = NewMain()
	if err := m.ParseFlags([]string{"-oath-letter-dir", "/tmp/l", "-data", "/srv/q.db"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if m.OATH.LetterDir != "/tmp/l" || m.OATH.KeepSecret || m.oathOn() {
		t.Fatalf("%+v", m.OATH)
	}
	if err := NewMain().ParseFlags([]string{"-oath-window-ahead", "-1"}, io.Discard); err == nil {
		t.Fatal("negative window accepted")
	}
}
