package wire_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// docRecover is the recovery request of the worked example in
// docs/protocol.md §9.4.
func docRecover() wire.Recover {
	return wire.Recover{Origin: "https://login.example.com", Code: "ABCDEFGHJKMNPQRS",
		DeviceID:    qrauth.DeviceIDFromKey(docKey().Public().(ed25519.PublicKey)),
		PhoneIDHash: "73913b6509ff7e465e4329d705195340fa781798ab404034fa9272cea3a93edd", DeviceName: "Pixel 9"}
}

// TestRecoverWorkedExample recomputes the worked example of the signed
// recovery request and checks that docs/protocol.md shows exactly it.
func TestRecoverWorkedExample(t *testing.T) {
	priv := docKey()
	pub := priv.Public().(ed25519.PublicKey)
	r := docRecover()
	want := "qrauth-v1 recover\norigin=https://login.example.com\n" +
		"code-sha256=f598056127fcd4387651a49b3a4235d8ce50d71f4091068df51511cfc10f388f\n" +
		"device=d_ZbYGc9btiEvwHCwiLYKtoA\nphone=73913b6509ff7e465e4329d705195340fa781798ab404034fa9272cea3a93edd\nname=Pixel 9\n"
	if got := string(r.SignedBytes()); got != want {
		t.Fatalf("signed bytes\n%q\nwant\n%q", got, want)
	}
	sig := r.Sign(priv)
	if err := r.Verify(pub, sig); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(sig)
	body, _ := json.Marshal(wire.RecoverRequest{Code: "ABCD-EFGH-JKMN-PQRS", DeviceID: r.DeviceID,
		PublicKey: base64.RawURLEncoding.EncodeToString(pub), PhoneIDHash: r.PhoneIDHash, DeviceName: r.DeviceName, Signature: sig})
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"```\n" + want + "```\n",
		strconv.Quote(want),
		fmt.Sprintf("The %d bytes signed", len(want)),
		sig,
		hex.EncodeToString(raw),
		string(body),
	} {
		if !strings.Contains(string(doc), s) {
			t.Errorf("docs/protocol.md lacks %q", s)
		}
	}
	// Each field changed changes the bytes: nothing is left out.
	for _, alt := range []wire.Recover{
		{Origin: "https://evil.example", Code: r.Code, DeviceID: r.DeviceID, PhoneIDHash: r.PhoneIDHash, DeviceName: r.DeviceName},
		{Origin: r.Origin, Code: "ABCDEFGHJKMNPQRT", DeviceID: r.DeviceID, PhoneIDHash: r.PhoneIDHash, DeviceName: r.DeviceName},
		{Origin: r.Origin, Code: r.Code, DeviceID: "d_AAAAAAAAAAAAAAAAAAAAAA", PhoneIDHash: r.PhoneIDHash, DeviceName: r.DeviceName},
		{Origin: r.Origin, Code: r.Code, DeviceID: r.DeviceID, PhoneIDHash: strings.Repeat("0", 64), DeviceName: r.DeviceName},
		{Origin: r.Origin, Code: r.Code, DeviceID: r.DeviceID, PhoneIDHash: r.PhoneIDHash, DeviceName: "Pixel 8"},
	} {
		if err := alt.Verify(pub, sig); qrauth.ErrorReason(err) != "bad_signature" {
			t.Errorf("signature of the example: %+v gives %v", alt, err)
		}
	}
	// A key other than the device's, or a bad signature, is refused.
	other := ed25519.NewKeyFromSeed(make([]byte, 32))
	if r.Verify(other.Public().(ed25519.PublicKey), r.Sign(other)) == nil {
		t.Error("a key that is not the device's verifies")
	}
	if r.Verify(pub, "!!") == nil || r.Verify(pub, "") == nil {
		t.Error("a malformed signature verifies")
	}
	if strings.Contains(want, r.Code) {
		t.Fatal("the code is in the signed bytes")
	}
	if got := wire.RecoverURL("https://login.example.com/", "ABCD-EFGH-JKMN-PQRS"); got != "https://login.example.com/app#recover=ABCD-EFGH-JKMN-PQRS" {
		t.Errorf("RecoverURL = %q", got)
	}
}

// FuzzRecoverRequest: no body panics in decoding or verifying, and a
// request that verifies carries an acceptable key that is its device's.
func FuzzRecoverRequest(f *testing.F) {
	priv := docKey()
	pub := priv.Public().(ed25519.PublicKey)
	r := docRecover()
	good, _ := json.Marshal(wire.RecoverRequest{Code: r.Code, DeviceID: r.DeviceID, PublicKey: base64.RawURLEncoding.EncodeToString(pub),
		PhoneIDHash: r.PhoneIDHash, DeviceName: r.DeviceName, Signature: r.Sign(priv)})
	f.Add(good)
	f.Add([]byte(strings.Replace(string(good), `"code":"A`, `"code":"B`, 1)))
	f.Add([]byte(`{"code":"x","public_key":"AQ","signature":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req wire.RecoverRequest
		if json.Unmarshal(data, &req) != nil {
			return
		}
		key, _ := base64.RawURLEncoding.DecodeString(req.PublicKey)
		rr := wire.Recover{Origin: r.Origin, Code: req.Code, DeviceID: req.DeviceID, PhoneIDHash: req.PhoneIDHash, DeviceName: req.DeviceName}
		if err := rr.Verify(key, req.Signature); err != nil {
			if qrauth.ErrorReason(err) != "bad_signature" {
				t.Fatalf("refusal %v", err)
			}
			return
		}
		if qrauth.CheckPublicKey(key) != nil || qrauth.DeviceIDFromKey(key) != req.DeviceID || rr != r {
			t.Fatalf("a request other than the example verifies: %+v", rr)
		}
	})
}
