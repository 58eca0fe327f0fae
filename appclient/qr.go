package appclient

import (
	"bytes"
	"image"
	_ "image/gif" // registers GIF for image.Decode
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/url"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// Limits of DecodeQRImage. A screenshot or a photo of a screen is far below
// both; they keep a crafted file from exhausting memory.
const (
	MaxQRImageBytes  = 32 << 20
	MaxQRImagePixels = 40_000_000
)

// PSK lengths accepted in a QR URL, in base64url characters: 22 is 128
// bits, what the server issues; longer keys are accepted for the future.
const (
	minPSKLen = 22
	maxPSKLen = 64
)

// DecodeQRImage finds a QR code in a PNG, JPEG or GIF image and returns its
// text. It returns EINVALID "unreadable_image" if r is not such an image (or
// is larger than MaxQRImageBytes or MaxQRImagePixels) and EINVALID
// "no_qr_code" if no QR code can be read in it.
func DecodeQRImage(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxQRImageBytes+1))
	if err != nil {
		return "", wrapf(qrauth.EINVALID, "unreadable_image", err, "Cannot read the image.")
	}
	if len(data) > MaxQRImageBytes {
		return "", qrauth.Errorf(qrauth.EINVALID, "unreadable_image", "The image is larger than %d MiB.", MaxQRImageBytes>>20)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return "", wrapf(qrauth.EINVALID, "unreadable_image", err, "The file is not a PNG, JPEG or GIF image.")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxQRImagePixels {
		return "", qrauth.Errorf(qrauth.EINVALID, "unreadable_image", "The image is %d×%d pixels; at most %d pixels are read.", cfg.Width, cfg.Height, MaxQRImagePixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return "", wrapf(qrauth.EINVALID, "unreadable_image", err, "The image is damaged.")
	}
	text, err := decodeQR(img)
	if qrauth.ErrorReason(err) == "no_qr_code" {
		// gozxing's detector misreads about 1 in 200 clean, computer-drawn
		// codes; read as a pure barcode (the code fills the image with its
		// quiet zone) before giving up.
		if t, perr := decodePureQR(img); perr == nil {
			return t, nil
		}
	}
	return text, err
}

func decodeQR(img image.Image) (text string, err error) {
	// gozxing is a port of ZXing; guard against a panic on a crafted image
	// so that bad input stays a typed error.
	defer func() {
		if p := recover(); p != nil {
			text, err = "", qrauth.Errorf(qrauth.EINVALID, "no_qr_code", "No QR code could be read in the image.")
		}
	}()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", wrapf(qrauth.EINVALID, "unreadable_image", err, "The image cannot be read.")
	}
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		return "", wrapf(qrauth.EINVALID, "no_qr_code", err, "No QR code could be read in the image.")
	}
	return res.GetText(), nil
}

// ParseQRURL checks that s, the text of a scanned QR code, is a qrauth code
// of the server at origin and returns its PSK. This check is part of the
// defence against QRLJacking: a code shown by another site, which could be
// relaying someone else's login, is refused before anything is sent.
//
// It returns EINVALID "foreign_origin" for an http(s) URL of any other
// origin, and EINVALID "not_a_qrauth_code" for anything that is not exactly
// ORIGIN/q/PSK with a base64url PSK (no query, fragment or escapes).
func ParseQRURL(origin, s string) (psk string, err error) {
	want, ok := normalizeOrigin(origin)
	if !ok {
		return "", qrauth.Errorf(qrauth.EINVALID, "invalid_origin", "The configured server origin %q is not valid; run init again.", origin)
	}
	notOurs := qrauth.Errorf(qrauth.EINVALID, "not_a_qrauth_code", "This QR code is not a qrauth login code.")
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return "", notOurs
	}
	got, ok := canonicalOrigin(u)
	if !ok {
		return "", notOurs
	}
	if got != want {
		return "", qrauth.Errorf(qrauth.EINVALID, "foreign_origin",
			"This code belongs to %s, not to your server %s. Never approve a code shown by another site.", got, want)
	}
	if u.User != nil || u.RawPath != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") ||
		!strings.HasPrefix(u.Path, wire.Prefix(wire.PathScan)) {
		return "", notOurs
	}
	psk = u.Path[len(wire.Prefix(wire.PathScan)):]
	if !qrauth.ValidToken(psk, minPSKLen, maxPSKLen) {
		return "", notOurs
	}
	return psk, nil
}
