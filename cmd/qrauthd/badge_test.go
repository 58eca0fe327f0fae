package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/server/badgeflow"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/crypto/argon2"
)

// badgeRunMain runs the real program with badges on, insecure scans
// accepted, and cheap argon2 parameters, with a master key file.
func badgeRunMain(t *testing.T, extra ...string) *Main {
	t.Helper()
	return MustRunMain(t, append([]string{"-key-file", mustKeyFile(t),
		"-badges", "-badge-insecure-scans", "-password-time", "1", "-password-memory", "64"}, extra...)...)
}

// badgeSetPassword gives uid a password straight in the store, hashed as
// the server hashes (argon2id with the parameters stored alongside).
func badgeSetPassword(t *testing.T, m *Main, uid qrauth.UserID, pw string) {
	t.Helper()
	salt, stamp := make([]byte, 16), make([]byte, 32)
	rand.Read(salt)
	rand.Read(stamp)
	p := badge.PasswordParams{Time: 1, Memory: 64, Threads: 1, KeyLen: 32}
	err := m.DB.SetPassword(context.Background(), &badge.Password{
		UserID: uid, Algorithm: badge.PasswordAlgorithm, Params: p, Salt: salt, Stamp: stamp, SetAt: time.Now(),
		Hash: argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

// badgeAdmin runs `qrauthd admin -data ... ARGS`.
func badgeAdmin(m *Main, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := runAdmin(context.Background(), append([]string{"-data", m.DataPath}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

var badgeIssuedRe = regexp.MustCompile(`badge (b_[A-Za-z0-9_-]{22}) issued`)

// badgeIssue issues a badge with the CLI into dir and returns its id.
func badgeIssue(t *testing.T, m *Main, uid qrauth.UserID, kind, dir string) string {
	t.Helper()
	code, out, errOut := badgeAdmin(m, "badge", "issue", string(uid), kind, "-out", dir)
	match := badgeIssuedRe.FindStringSubmatch(out)
	if code != 0 || match == nil {
		t.Fatalf("badge issue: %d %q %q", code, out, errOut)
	}
	for _, ext := range []string{".pdf", ".png"} {
		fi, err := os.Stat(filepath.Join(dir, "badge-"+match[1]+ext))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("badge file %s: %v %v", ext, fi, err)
		}
	}
	return match[1]
}

func TestBadgeAdminCommands(t *testing.T) {
	m := badgeRunMain(t)
	uid := signUp(t, m.Server.Origin(), "+41 79 000 00 07", "Grace Hopper")
	dir := t.TempDir()
	id := badgeIssue(t, m, uid, "insecure", dir)
	if code, _, errOut := badgeAdmin(m, "badge", "issue", string(uid), "secure", "-out", dir); code != 1 || !strings.Contains(errOut, "no_password") {
		t.Fatalf("secure without password: %d %q", code, errOut)
	}
	if code, _, _ := badgeAdmin(m, "badge", "issue", string(uid), "golden"); code != 2 {
		t.Fatalf("bad kind: %d", code)
	}
	if code, _, errOut := badgeAdmin(m, "badge", "issue", "u_nobody", "insecure", "-out", dir); code != 1 || !strings.Contains(errOut, "user_not_found") {
		t.Fatalf("unknown user: %d %q", code, errOut)
	}
	code, out, _ := badgeAdmin(m, "badge", "list", string(uid))
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "active") || !strings.Contains(out, "operator") {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, out, errOut := badgeAdmin(m, "badge", "revoke", id); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := badgeAdmin(m, "badge", "revoke", id); code != 1 || !strings.Contains(errOut, "badge_revoked") {
		t.Fatalf("revoke twice: %d %q", code, errOut)
	}
	if code, out, _ := badgeAdmin(m, "audit", string(uid)); code != 0 || !strings.Contains(out, "badge_issued") || !strings.Contains(out, "badge_revoked") {
		t.Fatalf("audit: %d %q", code, out)
	}
	code, out, _ = badgeAdmin(m, "users")
	if code != 0 || !strings.Contains(out, "Grace Hopper") {
		t.Fatalf("users: %d %q", code, out)
	}
	// Her only badge is revoked: 0 badges is not the method "badge".
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "Grace Hopper") && strings.Contains(line, "badge") {
			t.Errorf("users lists a badge for a user with none: %q", line)
		}
	}
}

func TestBadgeFlags(t *testing.T) {
	m := NewMain()
	if err := m.ParseFlags([]string{"-badges", "-badge-policy", "method", "-badge-second-factors", "password",
		"-badge-self-issue", "secure", "-password-threads", "4", "-password-memory", "65536"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	c := m.Badge
	if !m.BadgeOn || c.Policy != badgeflow.BadgeMethod || strings.Join(c.SecondFactors, ",") != "password" ||
		c.SelfIssue != badgeflow.SelfIssueSecure || c.Password.Threads != 4 || c.Password.Memory != 65536 || c.Password.Time != badgeflow.DefaultPasswordParams.Time {
		t.Fatalf("config %+v", c)
	}
	if err := NewMain().ParseFlags([]string{"-password-threads", "300"}, io.Discard); err == nil {
		t.Fatal("300 threads accepted")
	}
	// A bad environment is refused by flag parsing, like a bad flag (it
	// used to travel in the badge config until server.New).
	t.Setenv("QRAUTH_PASSWORD_TIME", "lots")
	err := NewMain().ParseFlags([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "q.db")}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "QRAUTH_PASSWORD_TIME") || !strings.Contains(err.Error(), "whole number") {
		t.Fatalf("bad environment not refused: %v", err)
	}
}

func TestBadgeNeedsKey(t *testing.T) {
	// Badges without a key refuse to start, saying how to make one.
	t.Setenv("QRAUTH_KEY", "")
	m := NewMain()
	if err := m.ParseFlags([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "q.db"), "-badges"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	m.LogOutput = io.Discard
	if err := m.Run(); err == nil || !strings.Contains(err.Error(), "genkey") {
		m.Close()
		t.Fatalf("run without key: %v", err)
	}
}

// badgeChromium is newChromium with Chromium's fake camera playing video.
func badgeChromium(t *testing.T, video string) (context.Context, func() []string) {
	t.Helper()
	return startChromium(t, 90*time.Second,
		chromedp.WindowSize(1200, 900),
		// The camera: a Y4M file instead of a device, and no prompt.
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-video-capture", video),
	)
}

// badgeVideo turns a badge PNG into the fake camera's Y4M: the code
// scaled without blur onto the middle of a white 640×480 frame, so it is
// not distorted, as a person would hold it up.
func badgeVideo(t *testing.T, png string) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg not on the PATH: apt-get install ffmpeg")
	}
	out := filepath.Join(t.TempDir(), "badge.y4m")
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", png, "-t", "2", "-r", "5",
		"-vf", "scale=360:360:flags=neighbor,pad=640:480:(ow-iw)/2:(oh-ih)/2:color=white",
		"-pix_fmt", "yuv420p", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, b)
	}
	return out
}

func badgeWaitState(t *testing.T, ctx context.Context, state string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#badge[data-state="`+state+`"]`, chromedp.ByQuery)); err != nil {
		var got, reason string
		// The test's context has ended; ask the page on a short one of
		// its own, with no wait for elements that are not there.
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		chromedp.Run(c, chromedp.Evaluate(`(document.querySelector('#badge') || {dataset: {}}).dataset.state || location.pathname`, &got),
			chromedp.Evaluate(`(document.querySelector('#badge') || {dataset: {}}).dataset.error || ''`, &reason))
		t.Fatalf("waiting for badge page state %s (page is %q %q): %v", state, got, reason, err)
	}
}

// badgeWaitAccount waits until the browser shows Ada's account page. The
// page navigates meanwhile, which ends a running wait with "navigated or
// closed"; then it waits again on the new page.
func badgeWaitAccount(t *testing.T, ctx context.Context) {
	t.Helper()
	var err error
	for range 10 {
		err = chromedp.Run(ctx, chromedp.Poll(`location.pathname === '/account' && document.querySelector('#user-name') !== null &&
			document.querySelector('#user-name').textContent === 'Ada Lovelace'`, nil))
		if err == nil || !(strings.Contains(err.Error(), "navigated or closed") || strings.Contains(err.Error(), "Cannot find context")) {
			break
		}
	}
	if err != nil {
		var state, text string
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		chromedp.Run(c, chromedp.Evaluate(`location.pathname + ' ' + (document.querySelector('main') || {}).dataset?.state`, &state),
			chromedp.Evaluate(`(document.querySelector('#badge-upload-error, #badge-password-error, #badge-error-message') || {}).textContent || ''`, &text))
		t.Fatalf("waiting for the account page (at %q, says %q): %v", state, text, err)
	}
}

// TestBrowserBadge drives the real badge page in headless Chromium. An
// insecure badge, printed with `qrauthd admin badge issue`, is shown to
// the fake camera; the page asks for the password and signs in. Then,
// signed out, a photo of a printed secure badge is uploaded instead of
// using the camera, and signs in on its own.
func TestBrowserBadge(t *testing.T) {
	m := badgeRunMain(t)
	origin := m.Server.Origin()
	uid := signUp(t, origin, "+41 79 000 00 08", "Ada Lovelace")
	badgeSetPassword(t, m, uid, "correct horse battery")
	dir := t.TempDir()
	insecure := badgeIssue(t, m, uid, "insecure", dir)
	secure := badgeIssue(t, m, uid, "secure", dir)

	ctx, problems := badgeChromium(t, badgeVideo(t, filepath.Join(dir, "badge-"+insecure+".png")))

	// The login page links to the badge page.
	if err := chromedp.Run(ctx,
		chromedp.Navigate(origin+wire.PathLogin),
		chromedp.WaitVisible(`#other-ways a[href="/badge"]`, chromedp.ByQuery),
		chromedp.Click(`#other-ways a[href="/badge"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	badgeWaitState(t, ctx, "start")
	if err := chromedp.Run(ctx, chromedp.Click("#badge-start", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	// The camera shows the badge; the server reads it from the frames.
	badgeWaitState(t, ctx, "second")
	var who string
	if err := chromedp.Run(ctx, chromedp.Text("#badge-lead", &who, chromedp.ByQuery)); err != nil || !strings.Contains(who, "Ada Lovelace") {
		t.Fatalf("second step says %q (%v)", who, err)
	}
	saveScreenshot(t, ctx, "badge-second-factor.png")
	// Not signed in yet.
	var signedIn bool
	chromedp.Run(ctx, chromedp.Evaluate(`fetch('/api/me').then(r => r.ok)`, &signedIn, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	}))
	if signedIn {
		t.Fatal("signed in by an insecure badge alone")
	}
	// A wrong password first: the page says so and stays.
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#badge-password", "wrong password", chromedp.ByQuery),
		chromedp.Click("#badge-password-submit", chromedp.ByQuery),
		chromedp.WaitVisible("#badge-password-error", chromedp.ByQuery),
		chromedp.SendKeys("#badge-password", "correct horse battery", chromedp.ByQuery),
	); err != nil {
		t.Fatalf("password step: %v", err)
	}
	// The click navigates, which may cut the action's own bookkeeping
	// short; the page state below is what counts.
	if err := chromedp.Run(ctx, chromedp.Click("#badge-password-submit", chromedp.ByQuery)); err != nil && !strings.Contains(err.Error(), "navigated or closed") {
		t.Fatal(err)
	}
	badgeWaitAccount(t, ctx)
	if err := chromedp.Run(ctx,
		// The account page has the password and badge sections.
		chromedp.WaitVisible(`#password-panel #password-state`, chromedp.ByQuery),
		chromedp.WaitVisible(`#badges-panel li[data-badge-id="`+insecure+`"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("account page: %v", err)
	}
	saveScreenshot(t, ctx, "badge-account.png")
	events, _ := m.DB.ListAudit(context.Background(), qrauth.AuditFilter{UserID: uid})
	if last := events[len(events)-1]; last.Type != qrauth.AuditSignIn || last.Detail != "methods badge_insecure+password" {
		t.Fatalf("last event %+v", last)
	}

	// Signed out, the upload fallback: a photo of the printed secure badge.
	photo := filepath.Join(dir, "photo")
	if out, err := exec.Command("pdftoppm", "-r", "150", "-png", "-singlefile",
		filepath.Join(dir, "badge-"+secure+".pdf"), photo).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v %s", err, out)
	}
	var status int
	if err := chromedp.Run(ctx,
		chromedp.Evaluate(`fetch('/api/logout', {method: 'POST'}).then(r => r.status)`, &status, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
			return p.WithAwaitPromise(true)
		}),
		chromedp.Navigate(origin+wire.PathBadge),
	); err != nil || status != 204 {
		t.Fatalf("sign out: %d %v", status, err)
	}
	badgeWaitState(t, ctx, "start")
	if err := chromedp.Run(ctx, chromedp.SetUploadFiles("#badge-file", []string{photo + ".png"}, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	badgeWaitAccount(t, ctx)
	events, _ = m.DB.ListAudit(context.Background(), qrauth.AuditFilter{UserID: uid})
	if last := events[len(events)-1]; last.Detail != "methods badge_secure" {
		t.Fatalf("last event %+v", last)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestBrowserBadgeNoCamera: a browser without a camera says so clearly and
// offers the photo upload.
func TestBrowserBadgeNoCamera(t *testing.T) {
	m := badgeRunMain(t)
	ctx, problems := newChromium(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(m.Server.Origin()+wire.PathBadge)); err != nil {
		t.Fatal(err)
	}
	badgeWaitState(t, ctx, "start")
	if err := chromedp.Run(ctx, chromedp.Click("#badge-start", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	badgeWaitState(t, ctx, "nocamera")
	var title, text string
	var upload bool
	if err := chromedp.Run(ctx,
		chromedp.Text("#badge-nocamera-title", &title, chromedp.ByQuery),
		chromedp.Text("#badge-nocamera-text", &text, chromedp.ByQuery),
		chromedp.Evaluate(`!document.querySelector('#badge-upload').hidden`, &upload),
	); err != nil {
		t.Fatal(err)
	}
	if title == "" || !strings.Contains(text, "photo") || !upload {
		t.Fatalf("no-camera state: %q %q upload %v", title, text, upload)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}
