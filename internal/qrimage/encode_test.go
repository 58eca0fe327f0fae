package qrimage_test

import (
	"bytes"
	"image/png"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/qrauth/qrauth/internal/qrimage"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/offline"
)

// TestRenderQR: the hand-written PNG is a valid PNG that a QR reader
// decodes back to the text.
func TestRenderQR(t *testing.T) {
	want := "https://login.example.com/q/" + strings.Repeat("Ab9-_", 4) + "xy"
	url, err := qrimage.DataURL(want)
	if err != nil {
		t.Fatal(err)
	}
	data := testutil.DataURLPNG(t, url)
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
		url, err := qrimage.DataURL(s)
		if err != nil {
			t.Fatal(err)
		}
		data := testutil.DataURLPNG(t, url)
		if got := testutil.ZbarScan(t, data); got != s {
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
		code, err := qrimage.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		return (code.Size - 17) / 4
	}
	for _, tc := range []struct {
		text string
		want int
	}{
		{hdr + strings.Repeat("a", offline.MaxContextLen), 10},
		{hdr + strings.Repeat("a", offline.MaxContextLen+1), 11},
		{hdr + strings.Repeat("é", offline.MaxContextLenNonASCII/2) + "a", 10},
		{hdr + strings.Repeat("é", offline.MaxContextLenNonASCII/2+1), 11},
	} {
		if len(tc.text) > offline.VDataHeaderLen+offline.ContextLimit(tc.text[offline.VDataHeaderLen:]) != (tc.want > 10) {
			t.Fatalf("%d bytes: ContextLimit disagrees with the test", len(tc.text))
		}
		if v := version(tc.text); v != tc.want {
			t.Errorf("%d bytes: version %d, want %d", len(tc.text), v, tc.want)
		}
	}
}

// BenchmarkRenderQR: the QR code of one rotation, as a PNG data URL.
func BenchmarkRenderQR(b *testing.B) {
	url := "https://login.example.com/q/" + strings.Repeat("A", 22)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := qrimage.DataURL(url); err != nil {
			b.Fatal(err)
		}
	}
}
