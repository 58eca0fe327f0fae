package appclient_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/wire"
	qrcode "github.com/skip2/go-qrcode"
)

func TestParseQRURL(t *testing.T) {
	const origin = "https://login.example.com"
	for _, tt := range []struct {
		name, origin, in string
		psk, reason      string
	}{
		{name: "OK", in: "https://login.example.com/q/" + testPSK, psk: testPSK},
		{name: "OKLongerPSK", in: "https://login.example.com/q/" + testPSK + "-_Zz09", psk: testPSK + "-_Zz09"},
		{name: "OKSpelling", in: " HTTPS://Login.Example.COM:443/q/" + testPSK + "\n", psk: testPSK},
		{name: "OKOriginWithSlash", origin: origin + "/", in: origin + wire.Prefix(wire.PathScan) + testPSK, psk: testPSK},
		{name: "OKPort", origin: "http://127.0.0.1:8080", in: "http://127.0.0.1:8080/q/" + testPSK, psk: testPSK},

		{name: "ForeignHost", in: "https://evil.example/q/" + testPSK, reason: "foreign_origin"},
		{name: "ForeignLookalike", in: "https://login.example.com.evil.example/q/" + testPSK, reason: "foreign_origin"},
		{name: "ForeignUserinfo", in: "https://login.example.com@evil.example/q/" + testPSK, reason: "foreign_origin"},
		{name: "ForeignScheme", in: "http://login.example.com/q/" + testPSK, reason: "foreign_origin"},
		{name: "ForeignPort", in: "https://login.example.com:8443/q/" + testPSK, reason: "foreign_origin"},
		{name: "ForeignOtherPath", in: "https://evil.example/", reason: "foreign_origin"},

		{name: "WrongPath", in: origin + "/login/" + testPSK, reason: "not_a_qrauth_code"},
		{name: "NoPSK", in: origin + wire.Prefix(wire.PathScan), reason: "not_a_qrauth_code"},
		{name: "Root", in: origin, reason: "not_a_qrauth_code"},
		{name: "ExtraSegment", in: origin + wire.Prefix(wire.PathScan) + testPSK + "/x", reason: "not_a_qrauth_code"},
		{name: "Query", in: origin + wire.Prefix(wire.PathScan) + testPSK + "?next=/admin", reason: "not_a_qrauth_code"},
		{name: "EmptyQuery", in: origin + wire.Prefix(wire.PathScan) + testPSK + "?", reason: "not_a_qrauth_code"},
		{name: "Fragment", in: origin + wire.Prefix(wire.PathScan) + testPSK + "#x", reason: "not_a_qrauth_code"},
		{name: "Escaped", in: origin + wire.Prefix(wire.PathScan) + "%41" + testPSK[1:], reason: "not_a_qrauth_code"},
		{name: "Userinfo", in: "https://user@login.example.com/q/" + testPSK, reason: "not_a_qrauth_code"},
		{name: "BadPSKShort", in: origin + wire.Path(wire.PathScan, "AAAA"), reason: "not_a_qrauth_code"},
		{name: "BadPSKChars", in: origin + wire.Prefix(wire.PathScan) + "AAAAAAAAAAAAAAAAAAAA+/", reason: "not_a_qrauth_code"},
		{name: "BadPSKPadding", in: origin + wire.Prefix(wire.PathScan) + "AAAAAAAAAAAAAAAAAAAAAA==", reason: "not_a_qrauth_code"},
		{name: "BadPSKLong", in: origin + wire.Prefix(wire.PathScan) + strings.Repeat("A", 65), reason: "not_a_qrauth_code"},
		{name: "NotAURL", in: "hello world", reason: "not_a_qrauth_code"},
		{name: "OtherScheme", in: "otpauth://totp/x?secret=AAAA", reason: "not_a_qrauth_code"},
		{name: "Empty", in: "", reason: "not_a_qrauth_code"},

		{name: "BadConfiguredOrigin", origin: "login.example.com", in: origin + wire.Prefix(wire.PathScan) + testPSK, reason: "invalid_origin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.origin
			if o == "" {
				o = origin
			}
			psk, err := appclient.ParseQRURL(o, tt.in)
			if tt.reason == "" {
				if err != nil || psk != tt.psk {
					t.Fatalf("ParseQRURL(%q) = %q, %v; want %q", tt.in, psk, err, tt.psk)
				}
				return
			}
			if psk != "" {
				t.Fatalf("psk = %q on error", psk)
			}
			wantError(t, err, qrauth.EINVALID, tt.reason)
		})
	}
}

func FuzzParseQRURL(f *testing.F) {
	const origin = "https://login.example.com"
	for _, s := range []string{origin + wire.Prefix(wire.PathScan) + testPSK, "https://evil.example/q/" + testPSK,
		origin + wire.Prefix(wire.PathScan) + testPSK + "?x#y", "http://[::1]:80/q/", "%zz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		psk, err := appclient.ParseQRURL(origin, s)
		if err != nil {
			var e *qrauth.Error
			if !errors.As(err, &e) || e.Code != qrauth.EINVALID || psk != "" {
				t.Fatalf("ParseQRURL(%q) = %q, %v; want a typed EINVALID error", s, psk, err)
			}
			return
		}
		// A PSK that was accepted is a clean token that round-trips.
		if len(psk) < 22 || strings.Trim(psk, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("ParseQRURL(%q) accepted PSK %q", s, psk)
		}
		if again, err := appclient.ParseQRURL(origin, origin+wire.Prefix(wire.PathScan)+psk); err != nil || again != psk {
			t.Fatalf("PSK %q does not round-trip: %q, %v", psk, again, err)
		}
	})
}

// qrImage encodes text as a QR code image, as the server renders it.
func qrImage(tb testing.TB, text string) image.Image {
	tb.Helper()
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		tb.Fatal(err)
	}
	return q.Image(256)
}

// scale resizes img by factor with nearest-neighbour sampling and puts it
// on a grey margin, like a crop of a screenshot.
func scale(img image.Image, factor float64) image.Image {
	b := img.Bounds()
	w, h := int(float64(b.Dx())*factor), int(float64(b.Dy())*factor)
	const margin = 40
	out := image.NewRGBA(image.Rect(0, 0, w+2*margin, h+2*margin))
	for y := range out.Bounds().Dy() {
		for x := range out.Bounds().Dx() {
			out.Set(x, y, color.Gray{Y: 200})
		}
	}
	for y := range h {
		for x := range w {
			out.Set(x+margin, y+margin, img.At(b.Min.X+int(float64(x)/factor), b.Min.Y+int(float64(y)/factor)))
		}
	}
	return out
}

func TestDecodeQRImage(t *testing.T) {
	const text = "https://login.example.com/q/" + testPSK
	for _, tt := range []struct {
		name   string
		encode func(tb testing.TB) []byte
	}{
		{"PNG", func(tb testing.TB) []byte {
			data, err := qrcode.Encode(text, qrcode.Medium, 256)
			if err != nil {
				tb.Fatal(err)
			}
			return data
		}},
		{"JPEGScaled", func(tb testing.TB) []byte {
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, scale(qrImage(tb, text), 1.7), &jpeg.Options{Quality: 75}); err != nil {
				tb.Fatal(err)
			}
			return buf.Bytes()
		}},
		{"GIF", func(tb testing.TB) []byte {
			var buf bytes.Buffer
			if err := gif.Encode(&buf, qrImage(tb, text), nil); err != nil {
				tb.Fatal(err)
			}
			return buf.Bytes()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appclient.DecodeQRImage(bytes.NewReader(tt.encode(t)))
			if err != nil {
				t.Fatal(err)
			}
			if got != text {
				t.Fatalf("decoded %q, want %q", got, text)
			}
		})
	}

	t.Run("ErrNoQRCode", func(t *testing.T) {
		var buf bytes.Buffer
		blank := image.NewGray(image.Rect(0, 0, 200, 200))
		for i := range blank.Pix {
			blank.Pix[i] = 255
		}
		png.Encode(&buf, blank)
		_, err := appclient.DecodeQRImage(&buf)
		wantError(t, err, qrauth.EINVALID, "no_qr_code")
	})

	t.Run("ErrNotAnImage", func(t *testing.T) {
		_, err := appclient.DecodeQRImage(strings.NewReader("https://login.example.com/q/" + testPSK))
		wantError(t, err, qrauth.EINVALID, "unreadable_image")
	})

	t.Run("ErrTooManyPixels", func(t *testing.T) {
		// A valid PNG header claiming 100000×100000 pixels, with no data:
		// refused from the header, before any allocation.
		var buf bytes.Buffer
		png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
		data := buf.Bytes()
		copy(data[16:24], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
		binary.BigEndian.PutUint32(data[29:33], crc32.ChecksumIEEE(data[12:29])) // IHDR type and data
		_, err := appclient.DecodeQRImage(bytes.NewReader(data))
		wantError(t, err, qrauth.EINVALID, "unreadable_image")
		if !strings.Contains(qrauth.ErrorMessage(err), "100000×100000") {
			t.Fatalf("err = %v, want the size refused", err)
		}
	})
}

func FuzzDecodeQRImage(f *testing.F) {
	seed, err := qrcode.Encode("https://login.example.com/q/"+testPSK, qrcode.Low, 64)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	var buf bytes.Buffer
	gif.Encode(&buf, qrImage(f, "x"), nil)
	f.Add(buf.Bytes())
	f.Add([]byte("GIF89a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := appclient.DecodeQRImage(bytes.NewReader(data))
		var e *qrauth.Error
		if err != nil && (!errors.As(err, &e) || e.Code != qrauth.EINVALID) {
			t.Fatalf("err = %v, want a typed EINVALID error", err)
		}
	})
}
