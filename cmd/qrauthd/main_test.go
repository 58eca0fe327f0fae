package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/wire"
)

// MustRunMain runs the real program on a loopback port over a bbolt file
// in a temporary directory, with extra flags after the usual test ones.
// Every test that runs Main goes through here (the flows' helpers add
// their flags).
func MustRunMain(tb testing.TB, extra ...string) *Main {
	tb.Helper()
	return mustRunMainLog(tb, io.Discard, extra...)
}

// mustRunMainLog is MustRunMain with the log written to logOut.
func mustRunMainLog(tb testing.TB, logOut io.Writer, extra ...string) *Main {
	tb.Helper()
	m := NewMain()
	args := append([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(tb.TempDir(), "qrauth.db"),
		"-room-rate", "1000", "-room-burst", "1000"}, extra...)
	if err := m.ParseFlags(args, io.Discard); err != nil {
		tb.Fatal(err)
	}
	m.LogOutput = logOut
	if err := m.Run(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return m
}

// mustKeyFile writes a new master key with `qrauthd genkey`, as an
// operator would, into a file of mode 0600 and returns its path.
func mustKeyFile(tb testing.TB) string {
	tb.Helper()
	var key bytes.Buffer
	if code := runGenkey(nil, &key, io.Discard); code != 0 {
		tb.Fatal("genkey failed")
	}
	path := filepath.Join(tb.TempDir(), "qrauth.key")
	if err := os.WriteFile(path, key.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// newChromium starts headless Chromium with a fresh profile and collects
// console errors and uncaught exceptions. extra adds flags (the phone web
// app's tests add a fake camera).
func newChromium(t *testing.T, extra ...chromedp.ExecAllocatorOption) (context.Context, func() []string) {
	t.Helper()
	return startChromium(t, 60*time.Second, extra...)
}

// startChromium is the one Chromium launcher of the tests: a fresh
// profile, the flags every test needs and then opts (which win over them),
// the tab's deadline, the collection of console errors and uncaught
// exceptions, and axe-core's watch of every page the tab shows.
func startChromium(t *testing.T, timeout time.Duration, opts ...chromedp.ExecAllocatorOption) (context.Context, func() []string) {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("QRAUTH_SKIP_BROWSER") != "" {
			t.Skip("chromium not installed and QRAUTH_SKIP_BROWSER set")
		}
		t.Fatal("chromium not on the PATH: install it (apt-get install chromium) or set QRAUTH_SKIP_BROWSER=1")
	}
	// Not t.TempDir: Chromium's helper processes may still be writing to
	// the profile while the browser exits, which fails TempDir's check.
	profile, err := os.MkdirTemp("", "qrauth-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1200, 860),
	}, opts...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelT()
		cancelC()
		cancelA()
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(20 * time.Millisecond) // helper processes still exiting
		}
	})

	var mu sync.Mutex
	var problems []string
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				problems = append(problems, "console.error: "+strings.Join(args, " "))
			}
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// axe-core checks every page this tab shows (see axe_test.go).
	watches.Store(ctx, watchPages(t, ctx))
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// shownQR waits for the page's QR image and returns the PNG it shows.
func shownQR(t *testing.T, ctx context.Context, sel string) []byte {
	t.Helper()
	var src string
	var ok bool
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible(sel, chromedp.ByQuery),
		chromedp.AttributeValue(sel, "src", &src, &ok, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(src, prefix) {
		t.Fatalf("QR src %.40q", src)
	}
	png, err := base64.StdEncoding.DecodeString(src[len(prefix):])
	if err != nil {
		t.Fatal(err)
	}
	return png
}

// saveScreenshot writes a PNG into docs/img when QRAUTH_SCREENSHOTS is set,
// so the README's pictures come from this very test.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var buf []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&buf, 100)); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("QRAUTH_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func waitState(t *testing.T, ctx context.Context, state string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#login[data-state="`+state+`"]`, chromedp.ByQuery)); err != nil {
		var got string
		// A short deadline of its own: ctx is spent, and on a page that
		// never showed #login the query would wait for ever.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		chromedp.Run(dctx, chromedp.AttributeValue("#login", "data-state", &got, nil, chromedp.ByQuery))
		cancel()
		t.Fatalf("waiting for state %s (page is %q): %v", state, got, err)
	}
}

// TestBrowserSignUpAndSignIn drives the real pages in headless Chromium:
// the app scans the very PNG the page shows, signs up through the page's
// form, signs out, and signs in again.
func TestBrowserSignUpAndSignIn(t *testing.T) {
	m := MustRunMain(t)
	origin := m.Server.Origin()
	ctx, problems := newChromium(t)

	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 123 45 67", Name: "Pixel 8"})
	if err != nil {
		t.Fatal(err)
	}

	if err := chromedp.Run(ctx, chromedp.Navigate(origin+wire.PathLogin)); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, "waiting")
	png := shownQR(t, ctx, "#qr")
	saveScreenshot(t, ctx, "login.png")

	url, err := appclient.DecodeQRImage(bytes.NewReader(png))
	if err != nil {
		t.Fatalf("decode the page's QR code: %v", err)
	}
	scan, err := dev.Scan(ctx, url, appclient.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ch := scan.Challenge; ch.Mode != wire.ModeSignUp || ch.Context.Browser == "" || ch.Context.IP != "127.0.0.1" {
		t.Fatalf("challenge %+v", ch)
	}
	waitState(t, ctx, "scanned")
	res, err := scan.Approve(ctx, appclient.ApproveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Type != wire.MsgNeedsForm {
		t.Fatalf("approve: %+v", res)
	}
	waitState(t, ctx, "signup")
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#signup-name", "Ada Lovelace", chromedp.ByQuery),
		chromedp.SendKeys("#signup-email", "ada@example.com", chromedp.ByQuery),
		chromedp.Click("#signup-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible(`#user-name`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#user-name').textContent === 'Ada Lovelace'`, nil),
		chromedp.Text("#user-name", &name, chromedp.ByQuery),
		chromedp.WaitVisible(`#sessions li, #sessions tr`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("account page: %v", err)
	}
	scan.Close()
	saveScreenshot(t, ctx, "account.png")

	// Sign out, then sign in again with the now registered phone.
	// The click navigates, which may cut the Click action's own
	// bookkeeping short; the page state below is what counts.
	if err := chromedp.Run(ctx, chromedp.Click("#logout", chromedp.ByQuery)); err != nil && !strings.Contains(err.Error(), "navigated or closed") {
		t.Fatal(err)
	}
	waitState(t, ctx, "waiting")
	url, err = appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#qr")))
	if err != nil {
		t.Fatal(err)
	}
	scan, err = dev.Scan(ctx, url, appclient.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer scan.Close()
	if ch := scan.Challenge; ch.Mode != wire.ModeLogin || ch.Account.Name != "Ada Lovelace" || ch.KnownAddress == nil || !*ch.KnownAddress {
		t.Fatalf("challenge %+v", ch)
	}
	if res, err := scan.Approve(ctx, appclient.ApproveOptions{}); err != nil || res.Result != "signed_in" {
		t.Fatalf("approve: %+v %v", res, err)
	}
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible(`#user-name`, chromedp.ByQuery),
		chromedp.Poll(`location.pathname === '/account' && document.querySelector('#user-name').textContent === 'Ada Lovelace'`, nil),
	); err != nil {
		t.Fatal(err)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}
