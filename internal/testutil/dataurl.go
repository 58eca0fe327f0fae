package testutil

import (
	"encoding/base64"
	"strings"
	"testing"
)

// DataURLPNG returns the PNG bytes of a "data:image/png;base64," URL, as
// the server sends its QR codes.
func DataURLPNG(tb testing.TB, dataURL string) []byte {
	tb.Helper()
	data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(dataURL, "data:image/png;base64,"))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
