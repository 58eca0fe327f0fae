package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/wire"
)

// TestLoginPageLink: the login page shows the link its QR code encodes as
// text, with a copy button. With the clipboard allowed, the button puts the
// link there and says "Copied" in a live region; without it, the link is
// selected for Ctrl+C and the page says so. The copied link works as a scan
// (`qrauth-app scan URL`). axe-core checks the page in both states.
func TestLoginPageLink(t *testing.T) {
	m := runPhoneAppMain(t) // codes last 2 minutes: the link cannot change under the test
	origin := m.Server.Origin()

	t.Run("Copied", func(t *testing.T) {
		ctx, problems := newChromium(t)
		if err := chromedp.Run(ctx, browser.GrantPermissions([]browser.PermissionType{
			browser.PermissionTypeClipboardReadWrite, browser.PermissionTypeClipboardSanitizedWrite,
		}).WithOrigin(origin)); err != nil {
			t.Fatal(err)
		}
		shown := loginLink(t, ctx, origin)

		// The link is the QR code's.
		decoded, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#qr")))
		if err != nil {
			t.Fatal(err)
		}
		if decoded != shown {
			t.Fatalf("page shows %q, its QR code encodes %q", shown, decoded)
		}

		copyLinkAndWait(t, ctx, `'Copied'`)
		var clip string
		evalAsync(t, ctx, `navigator.clipboard.readText()`, &clip)
		if clip != shown {
			t.Errorf("clipboard holds %q, want %q", clip, shown)
		}
		watchOf(t, ctx).Check()

		// What was copied signs in: the app scans the text.
		dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 123 45 67", Name: "Pixel 8"})
		if err != nil {
			t.Fatal(err)
		}
		scan, err := dev.Scan(ctx, clip, appclient.ScanOptions{})
		if err != nil {
			t.Fatalf("scan the copied link: %v", err)
		}
		if scan.Challenge.Mode != wire.ModeSignUp {
			t.Errorf("challenge %+v", scan.Challenge)
		}
		waitState(t, ctx, "scanned")
		if p := problems(); len(p) > 0 {
			t.Errorf("browser problems: %v", p)
		}
	})

	t.Run("SelectedWithoutClipboard", func(t *testing.T) {
		ctx, problems := newChromium(t)
		for _, name := range []string{"clipboard-write", "clipboard-read"} {
			if err := chromedp.Run(ctx, browser.SetPermission(&browser.PermissionDescriptor{Name: name}, browser.PermissionSettingDenied).WithOrigin(origin)); err != nil {
				t.Fatal(err)
			}
		}
		shown := loginLink(t, ctx, origin)
		copyLinkAndWait(t, ctx, `'Link selected: press Ctrl+C to copy it'`)
		var selected string
		if err := chromedp.Run(ctx, chromedp.Evaluate(`window.getSelection().toString()`, &selected)); err != nil {
			t.Fatal(err)
		}
		if selected != shown {
			t.Errorf("selection %q, want the link %q", selected, shown)
		}
		watchOf(t, ctx).Check()
		if p := problems(); len(p) > 0 {
			t.Errorf("browser problems: %v", p)
		}
	})
}

// loginLink opens the login page and returns the link it shows as text,
// after checking its shape and that the copy button is named for it.
func loginLink(t *testing.T, ctx context.Context, origin string) string {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Navigate(origin+wire.PathLogin)); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, "waiting")
	var shown, label, role, live string
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible("#qr-link", chromedp.ByQuery),
		chromedp.Text("#qr-link", &shown, chromedp.ByQuery),
		chromedp.AttributeValue("#qr-link-copy", "aria-label", &label, nil, chromedp.ByQuery),
		chromedp.AttributeValue("#qr-link-copied", "role", &role, nil, chromedp.ByQuery),
		chromedp.AttributeValue("#qr-link-copied", "aria-live", &live, nil, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(origin) + `/q/[A-Za-z0-9_-]{22}$`).MatchString(shown) {
		t.Fatalf("login page shows link %q", shown)
	}
	if label != "Copy the sign-in link" || role != "status" || live != "polite" {
		t.Errorf("copy button aria-label %q, status role %q aria-live %q", label, role, live)
	}
	return shown
}

// copyLinkAndWait clicks the copy button and waits until the live region
// says want (a JavaScript string).
func copyLinkAndWait(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	if err := chromedp.Run(ctx,
		chromedp.Click("#qr-link-copy", chromedp.ByQuery),
		chromedp.Poll(`document.getElementById('qr-link-copied').textContent === `+want, nil),
	); err != nil {
		var got string
		chromedp.Run(context.WithoutCancel(ctx), chromedp.Text("#qr-link-copied", &got, chromedp.ByQuery))
		t.Fatalf("copy: live region says %q, want %s: %v", got, want, err)
	}
}
