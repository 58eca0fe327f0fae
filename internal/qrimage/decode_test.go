package qrimage_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/qrimage"
)

func TestRead(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		code, err := qrimage.Encode("https://login.example.com/q/AAAAAAAAAAAAAAAAAAAAAA")
		if err != nil {
			t.Fatal(err)
		}
		data, err := qrimage.PNG(code, 2)
		if err != nil {
			t.Fatal(err)
		}
		img, err := qrimage.Read(data, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if text, err := qrimage.Decode(img); err != nil || text != "https://login.example.com/q/AAAAAAAAAAAAAAAAAAAAAA" {
			t.Fatalf("Decode = %q, %v", text, err)
		}
	})
	t.Run("ErrNotImage", func(t *testing.T) {
		if _, err := qrimage.Read([]byte("not an image"), 1<<20); !errors.Is(err, qrimage.ErrNotImage) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("TooLarge", func(t *testing.T) {
		var buf bytes.Buffer
		png.Encode(&buf, image.NewGray(image.Rect(0, 0, 100, 100)))
		var tl *qrimage.TooLargeError
		if _, err := qrimage.Read(buf.Bytes(), 100*100-1); !errors.As(err, &tl) || tl.Width != 100 {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("NoQRCode", func(t *testing.T) {
		img := image.NewGray(image.Rect(0, 0, 200, 200))
		for i := range img.Pix {
			img.Pix[i] = uint8(i * 7)
		}
		img.Set(0, 0, color.White)
		if _, err := qrimage.Decode(img); qrauth.ErrorReason(err) != "no_qr_code" {
			t.Fatalf("err = %v", err)
		}
	})
}
