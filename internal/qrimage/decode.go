package qrimage

import (
	"bytes"
	"errors"
	"fmt"
	"image"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/qrauth/qrauth"
)

// Read errors. Callers answer each in their own words: the limits and the
// formats they accept differ (the app reads GIF too, the badge endpoint
// takes small camera frames).
var (
	// ErrNotImage: the data is not an image of a registered format, or is
	// damaged. Which formats are registered is up to the program (blank
	// imports of image/png, image/jpeg, image/gif).
	ErrNotImage = errors.New("qrimage: not an image that can be read")
)

// TooLargeError is Read's answer for an image of more pixels than allowed.
type TooLargeError struct{ Width, Height, MaxPixels int }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("qrimage: image is %d×%d pixels, more than %d", e.Width, e.Height, e.MaxPixels)
}

// Read decodes an image of at most maxPixels pixels. It looks at the
// header first, so a crafted file announcing a huge image is refused
// before any pixel memory is allocated. Errors wrap ErrNotImage or are a
// *TooLargeError.
func Read(data []byte, maxPixels int) (image.Image, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotImage, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return nil, &TooLargeError{Width: cfg.Width, Height: cfg.Height, MaxPixels: maxPixels}
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotImage, err)
	}
	return img, nil
}

// ErrNoQRCode is Decode's answer when no QR code can be read: EINVALID
// "no_qr_code".
var ErrNoQRCode = qrauth.Errorf(qrauth.EINVALID, "no_qr_code", "No QR code could be read in the image.")

// Decode returns the text of the QR code in img, or ErrNoQRCode.
//
// ZXing's detector (gozxing is a port) misses some clean codes at one
// sampling and reads them at another: about 1 in 200 computer-drawn login
// codes and 1 in 100 printed badges rendered at 300 dpi. So Decode tries
// both binarizers on the image and on a half-size copy, and finally reads
// the image as a pure barcode (the code alone with its quiet zone, as a
// screenshot or a badge PNG is), which skips the finder-pattern search
// that misses. A camera frame gets the same second chances.
func Decode(img image.Image) (text string, err error) {
	// A crafted image must stay a typed error, not a panic in the port.
	defer func() {
		if p := recover(); p != nil {
			text, err = "", ErrNoQRCode
		}
	}()
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	for _, im := range []image.Image{img, halfSize(img)} {
		if im == nil {
			continue
		}
		src := gozxing.NewLuminanceSourceFromImage(im)
		for _, bin := range []gozxing.Binarizer{gozxing.NewHybridBinarizer(src), gozxing.NewGlobalHistgramBinarizer(src)} {
			if t, ok := decode(bin, hints); ok {
				return t, nil
			}
		}
	}
	pure := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}
	if t, ok := decode(gozxing.NewHybridBinarizer(gozxing.NewLuminanceSourceFromImage(img)), pure); ok {
		return t, nil
	}
	return "", ErrNoQRCode
}

func decode(bin gozxing.Binarizer, hints map[gozxing.DecodeHintType]any) (string, bool) {
	bmp, err := gozxing.NewBinaryBitmap(bin)
	if err != nil {
		return "", false
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		return "", false
	}
	return res.GetText(), true
}

// halfSize averages 2×2 pixels into one gray pixel; nil for images too
// small to halve.
func halfSize(img image.Image) image.Image {
	b := img.Bounds()
	w, h := b.Dx()/2, b.Dy()/2
	if w < 64 || h < 64 {
		return nil
	}
	out := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var sum uint32
			for dy := 0; dy < 2; dy++ {
				for dx := 0; dx < 2; dx++ {
					r, g, bl, _ := img.At(b.Min.X+2*x+dx, b.Min.Y+2*y+dy).RGBA()
					sum += (299*r + 587*g + 114*bl) / 1000
				}
			}
			out.Pix[y*out.Stride+x] = uint8(sum / 4 >> 8)
		}
	}
	return out
}
