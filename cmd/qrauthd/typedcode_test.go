package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/qrauth/qrauth/wire"
)

// TestPhoneAppTypedCode: the phone's camera sees no QR code (a blank
// picture), so the person taps "Type a code" on the scan screen and types
// the code the desktop login page shows under its QR code: a wrong code is
// refused in plain words and the form stays; the right one, typed in lower
// case with a space, leads to the same approval screen as a scan, and the
// desktop ends signed up.
func TestPhoneAppTypedCode(t *testing.T) {
	m := runPhoneAppMain(t)
	origin := m.Server.Origin()

	desk, deskProblems := newChromium(t)
	if err := chromedp.Run(desk, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	waitState(t, desk, "waiting")
	var shown string
	if err := chromedp.Run(desk,
		chromedp.WaitVisible("#user-code-line", chromedp.ByQuery),
		chromedp.Text("#user-code", &shown, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`).MatchString(shown) {
		t.Fatalf("login page shows code %q", shown)
	}
	saveScreenshot(t, desk, "login-code.png")

	// A camera that sees a blank page.
	blank := image.NewGray(image.Rect(0, 0, 120, 120))
	for i := range blank.Pix {
		blank.Pix[i] = 0xff
	}
	blank.Set(0, 0, color.Gray{Y: 0xfe})
	var pic bytes.Buffer
	if err := png.Encode(&pic, blank); err != nil {
		t.Fatal(err)
	}
	camera := filepath.Join(t.TempDir(), "blank.y4m")
	writeCameraFile(t, pic.Bytes(), camera)
	phone, phoneProblems := newPhone(t, camera)
	phoneSetUp(t, phone, origin, "+41 79 123 45 67", "Pixel 8")

	// The page's normalisation is wire.NormalizeUserCode's.
	inputs := []string{shown, "7k3m qx9d", "oil0-abcd", "UUUU-UUUU", "7K3M-QX9", "７K3M-QX9D", "7K3M_QX9D", "a b-c\td e f g h"}
	var js []string
	raw, _ := json.Marshal(inputs)
	evalAsync(t, phone, `import('/static/app/protocol.js').then(p => `+string(raw)+`.map(s => p.normalizeUserCode(s) || ''))`, &js)
	for i, in := range inputs {
		want, _ := wire.NormalizeUserCode(in)
		if js[i] != want {
			t.Errorf("normalizeUserCode(%q) = %q in the app, %q in Go", in, js[i], want)
		}
	}

	if err := chromedp.Run(phone, chromedp.Click("#scan-start", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "scan")
	if err := chromedp.Run(phone, chromedp.Click("#scan-type", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "typecode")
	saveScreenshot(t, phone, "phone-typecode.png")

	// A wrong code: refused, the form stays for another try.
	wrong := "ZZZZ-ZZZZ"
	if strings.ReplaceAll(shown, "-", "") == "ZZZZZZZZ" {
		wrong = "YYYY-YYYY"
	}
	var msg string
	if err := chromedp.Run(phone,
		chromedp.SendKeys("#typecode-input", wrong, chromedp.ByQuery),
		chromedp.Click("#typecode-submit", chromedp.ByQuery),
		chromedp.WaitVisible("#typecode-error", chromedp.ByQuery),
		chromedp.Text("#typecode-error", &msg, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "not right") {
		t.Fatalf("wrong code: %q", msg)
	}
	waitScreen(t, phone, "typecode")

	// The right code, as a person might type it.
	typed := strings.ToLower(strings.ReplaceAll(shown, "-", " "))
	if err := chromedp.Run(phone,
		chromedp.Evaluate(`document.querySelector('#typecode-input').value = ''`, nil),
		chromedp.SendKeys("#typecode-input", typed, chromedp.ByQuery),
		chromedp.Click("#typecode-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "approve")
	waitState(t, desk, "scanned")
	var title string
	if err := chromedp.Run(phone, chromedp.Text("#approve-title", &title, chromedp.ByQuery)); err != nil || title != "Create an account?" {
		t.Fatalf("approve title %q %v", title, err)
	}
	if err := chromedp.Run(phone,
		chromedp.SendKeys("#profile-name", "Ada Lovelace", chromedp.ByQuery),
		chromedp.Click("#approve-yes", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "result")
	if err := waitSignedIn(desk, "Ada Lovelace"); err != nil {
		t.Fatalf("desktop not signed up: %v", err)
	}
	for name, p := range map[string]func() []string{"desktop": deskProblems, "phone": phoneProblems} {
		if got := p(); len(got) > 0 {
			t.Errorf("%s console problems:\n%s", name, strings.Join(got, "\n"))
		}
	}
}
