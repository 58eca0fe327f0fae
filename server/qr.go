package server

import (
	"encoding/base64"

	qrcode "github.com/skip2/go-qrcode"
)

// qrModulePixels is the size of one QR module in the PNG. The page scales
// the image up with crisp edges, so a small PNG keeps every rotation message
// small while staying easy for any camera and decoder.
const qrModulePixels = 6

// renderQR returns a PNG data URL of a QR code of s at error correction M.
func renderQR(s string) (string, error) {
	q, err := qrcode.New(s, qrcode.Medium)
	if err != nil {
		return "", err
	}
	png, err := q.PNG(-qrModulePixels)
	if err != nil {
		return "", err
	}
	const prefix = "data:image/png;base64,"
	buf := make([]byte, len(prefix)+base64.StdEncoding.EncodedLen(len(png)))
	copy(buf, prefix)
	base64.StdEncoding.Encode(buf[len(prefix):], png)
	return string(buf), nil
}
