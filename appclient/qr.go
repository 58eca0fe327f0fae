package appclient

import (
	"errors"
	_ "image/gif" // registers GIF for image.Decode
	_ "image/jpeg"
	_ "image/png"
	"io"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/qrimage"
	"github.com/qrauth/qrauth/wire"
)

// Limits of DecodeQRImage. A screenshot or a photo of a screen is far below
// both; they keep a crafted file from exhausting memory.
const (
	MaxQRImageBytes  = 32 << 20
	MaxQRImagePixels = 40_000_000
)

// Token lengths accepted in a code's URL (a login PSK, a transaction
// token), in base64url characters: 22 is 128 bits, what the server issues;
// longer ones are accepted for the future.
const (
	minTokenLen = 22
	maxTokenLen = 64
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
	img, err := qrimage.Read(data, MaxQRImagePixels)
	var tooBig *qrimage.TooLargeError
	if errors.As(err, &tooBig) {
		return "", qrauth.Errorf(qrauth.EINVALID, "unreadable_image", "The image is %d×%d pixels; at most %d pixels are read.", tooBig.Width, tooBig.Height, MaxQRImagePixels)
	} else if err != nil {
		return "", wrapf(qrauth.EINVALID, "unreadable_image", err, "The file is not a PNG, JPEG or GIF image.")
	}
	return qrimage.Decode(img)
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
	return parseCodeURL(origin, s, wire.Prefix(wire.PathScan),
		qrauth.Errorf(qrauth.EINVALID, "not_a_qrauth_code", "This QR code is not a qrauth login code."))
}
