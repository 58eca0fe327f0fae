package wire_test

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

func TestTransactionDecision(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	d := wire.TransactionDecision{Origin: "https://login.example.com", TransactionID: "t_abc",
		TextSHA256: wire.TextSHA256("Pay 10 CHF"), DeviceID: qrauth.DeviceIDFromKey(pub), Decision: wire.DecisionApprove}
	want := "qrauth-v1 transaction\norigin=https://login.example.com\ntransaction=t_abc\n" +
		"text-sha256=" + wire.TextSHA256("Pay 10 CHF") + "\ndevice=" + string(d.DeviceID) + "\ndecision=approve\n"
	if string(d.SignedBytes()) != want {
		t.Fatalf("signed bytes %q", d.SignedBytes())
	}
	sig := d.Sign(priv)
	if err := d.Verify(pub, sig); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*wire.TransactionDecision){
		"OtherText":   func(x *wire.TransactionDecision) { x.TextSHA256 = wire.TextSHA256("Pay 1000 CHF") },
		"OtherOrigin": func(x *wire.TransactionDecision) { x.Origin = "https://evil.example" },
		"OtherID":     func(x *wire.TransactionDecision) { x.TransactionID = "t_other" },
		"Deny":        func(x *wire.TransactionDecision) { x.Decision = wire.DecisionDeny },
		"Newline":     func(x *wire.TransactionDecision) { x.Origin += "\n" },
	} {
		x := d
		edit(&x)
		if err := x.Verify(pub, sig); qrauth.ErrorReason(err) != "bad_signature" {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeTransactionDecisionRequest(f *testing.F) {
	f.Add([]byte(`{"decision":"approve","signature":"` + strings.Repeat("A", 86) + `"}`))
	f.Add([]byte(`{"decision":"deny","signature":""}`))
	f.Add([]byte(`{"decision":"maybe"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := wire.DecodeTransactionDecisionRequest(data)
		if err != nil {
			if c := qrauth.ErrorCode(err); c != qrauth.EINVALID && c != qrauth.EUNAUTHORIZED {
				t.Fatalf("code %s", c)
			}
			return
		}
		if (r.Decision != wire.DecisionApprove && r.Decision != wire.DecisionDeny) || len(r.Signature) != 86 {
			t.Fatalf("accepted %+v", r)
		}
	})
}
