package wire_test

import (
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

func TestNormalizeUserCode(t *testing.T) {
	for in, want := range map[string]string{
		"7K3M-QX9D":     "7K3MQX9D",
		"7k3m qx9d":     "7K3MQX9D",
		" 7K3MQX9D ":    "7K3MQX9D",
		"OIL0-1234":     "0110" + "1234",
		"oil0-abcd":     "0110ABCD",
		"7-K-3-M-QX9D":  "7K3MQX9D",
		"zzzz\tzzzz":    "ZZZZZZZZ",
		"0000-0000":     "00000000",
		"VWXY-Z012":     "VWXYZ012",
		"7K3M-QX9D\t\t": "7K3MQX9D",
	} {
		got, err := wire.NormalizeUserCode(in)
		if err != nil || got != want {
			t.Errorf("NormalizeUserCode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "7K3M-QX9", "7K3M-QX9DA", "UUUU-UUUU", "7K3M_QX9D", "7K3M-QX9Ð",
		"７K3M-QX9D", "7K3M-QX9D" + string(rune(0)), "                                 7K3MQX9D",
	} {
		if got, err := wire.NormalizeUserCode(in); qrauth.ErrorReason(err) != "invalid_code" {
			t.Errorf("NormalizeUserCode(%q) = %q, %v; want invalid_code", in, got, err)
		}
	}
	if got := wire.FormatUserCode("7K3MQX9D"); got != "7K3M-QX9D" {
		t.Errorf("FormatUserCode = %q", got)
	}
	if len(wire.UserCodeAlphabet) != 32 {
		t.Errorf("alphabet of %d characters", len(wire.UserCodeAlphabet))
	}
}
