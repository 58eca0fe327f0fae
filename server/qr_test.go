package server

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/qrauth/qrauth"
)

// TestRenderQR: the hand-written PNG is a valid PNG that a QR reader
// decodes back to the text.
func TestRenderQR(t *testing.T) {
	want := "https://login.example.com/q/" + strings.Repeat("Ab9-_", 4) + "xy"
	url, err := renderQR(want)
	if err != nil {
		t.Fatal(err)
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(url, "data:image/png;base64,"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gzqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if res.GetText() != want {
		t.Fatalf("decoded %q, want %q", res.GetText(), want)
	}
}

// ZbarScan reads png with zbarimg, a generic scanner that guesses the
// character set of byte-mode data unless an ECI says it, and returns the
// exact bytes it hands over. It skips the test where zbarimg is missing,
// but not in CI, whose .ci/run installs zbar-tools. (Exported for the
// external tests of this package.)
func ZbarScan(tb testing.TB, png []byte) string {
	tb.Helper()
	if _, err := exec.LookPath("zbarimg"); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal("zbarimg not on the PATH: apt-get install zbar-tools")
		}
		tb.Skip("zbarimg not installed (apt-get install zbar-tools); skipping the generic-scanner check")
	}
	f := filepath.Join(tb.TempDir(), "qr.png")
	if err := os.WriteFile(f, png, 0o600); err != nil {
		tb.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("zbarimg", "-q", "--raw", f)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("zbarimg: %v\n%s", err, stderr.String())
	}
	// zbarimg ends each symbol's data with one newline of its own.
	out, ok := strings.CutSuffix(stdout.String(), "\n")
	if !ok {
		tb.Fatalf("zbarimg output %q lacks its newline", stdout.String())
	}
	return out
}

// pngOf returns the PNG bytes of a data URL from renderQR.
func pngOf(tb testing.TB, dataURL string) []byte {
	tb.Helper()
	data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(dataURL, "data:image/png;base64,"))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// TestRenderQRUTF8: a text beyond ASCII carries a UTF-8 ECI, so zbar (which
// guessed Shift-JIS without it) and the phone's gozxing both read back the
// exact bytes; ASCII is unchanged.
func TestRenderQRUTF8(t *testing.T) {
	hdr := "1P9AAAAAAAAAA"
	for _, s := range []string{
		"https://login.example.com/q/AAAAAAAAAAAAAAAAAAAAAA",
		hdr + "Sign in to login.example.com",
		hdr + "Zahlung an Müller GmbH: 12,50 €\nIBAN CH93 0076 2011 6238 5295 7",
		hdr + strings.Repeat("é", 99) + "a",
		hdr + strings.Repeat("€", 66) + "a",
		hdr + strings.Repeat("𝄞", 49) + "abc",
		hdr + "日本語の取引テキスト",
		hdr + "Ωmega ßtraße ½ ¥",
	} {
		url, err := renderQR(s)
		if err != nil {
			t.Fatal(err)
		}
		data := pngOf(t, url)
		if got := ZbarScan(t, data); got != s {
			t.Errorf("zbarimg read %q, want %q", got, s)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		bmp, _ := gozxing.NewBinaryBitmapFromImage(img)
		res, err := gzqr.NewQRCodeReader().Decode(bmp, nil)
		if err != nil || res.GetText() != s {
			t.Errorf("gozxing read %v, %v; want %q", res, err, s)
		}
	}
}

// TestQRCapacityWithECI: the longest verification data (13 header bytes,
// then MaxContextLen bytes of ASCII or MaxContextLenNonASCII bytes beyond
// ASCII, which carry the 12-bit ECI too) is a version-10 code at level M,
// and one byte more is not: the limits are exact.
func TestQRCapacityWithECI(t *testing.T) {
	hdr := "1P9AAAAAAAAAA"
	version := func(s string) int {
		code, err := encodeQR(s)
		if err != nil {
			t.Fatal(err)
		}
		return (code.Size - 17) / 4
	}
	for _, tc := range []struct {
		text string
		want int
	}{
		{hdr + strings.Repeat("a", qrauth.MaxContextLen), 10},
		{hdr + strings.Repeat("a", qrauth.MaxContextLen+1), 11},
		{hdr + strings.Repeat("é", qrauth.MaxContextLenNonASCII/2) + "a", 10},
		{hdr + strings.Repeat("é", qrauth.MaxContextLenNonASCII/2+1), 11},
	} {
		if len(tc.text) > qrauth.VDataHeaderLen+qrauth.ContextLimit(tc.text[qrauth.VDataHeaderLen:]) != (tc.want > 10) {
			t.Fatalf("%d bytes: ContextLimit disagrees with the test", len(tc.text))
		}
		if v := version(tc.text); v != tc.want {
			t.Errorf("%d bytes: version %d, want %d", len(tc.text), v, tc.want)
		}
	}
}
