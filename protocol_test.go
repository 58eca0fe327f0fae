package qrauth_test

import (
	"bytes"
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
)

func TestDecodeAppFrame(t *testing.T) {
	psk := strings.Repeat("A", 22)
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := priv.Public().(ed25519.PublicKey)
	key := base64.RawURLEncoding.EncodeToString(pub)
	dev := qrauth.DeviceIDFromKey(pub)
	hash := strings.Repeat("ab", 32)
	j := qrauth.Join{Origin: "https://login.example.com", PSK: psk, DeviceID: dev, PhoneIDHash: hash}
	sig := j.Sign(priv)
	signed := `","public_key":"` + key + `","signature":"` + sig + `"}`
	weak := "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // the identity point
	weakDev := qrauth.DeviceIDFromKey(append([]byte{1}, make([]byte, 31)...))
	cases := []struct {
		name, frame, reason string
	}{
		{"OK/Join", `{"type":"join","psk":"` + psk + `","device_id":"` + string(dev) + `","phone_id_hash":"` + hash + signed, ""},
		{"ErrJoinUnsigned", `{"type":"join","psk":"` + psk + `","device_id":"` + string(dev) + `","phone_id_hash":"` + hash + `"}`, "join_not_signed"},
		{"ErrJoinNoKey", `{"type":"join","psk":"` + psk + `","device_id":"` + string(dev) + `","phone_id_hash":"` + hash + `","signature":"` + sig + `"}`, "join_not_signed"},
		{"ErrJoinNoDevice", `{"type":"join","psk":"` + psk + `","phone_id_hash":"` + hash + signed, "device_id_required"},
		{"ErrJoinOtherDevice", `{"type":"join","psk":"` + psk + `","device_id":"` + string(weakDev) + `","phone_id_hash":"` + hash + signed, "device_id_mismatch"},
		{"ErrJoinWeakKey", `{"type":"join","psk":"` + psk + `","device_id":"` + string(weakDev) + `","phone_id_hash":"` + hash + `","public_key":"` + weak + `","signature":"` + sig + `"}`, "weak_public_key"},
		{"ErrJoinBadSignature", `{"type":"join","psk":"` + psk + `","device_id":"` + string(dev) + `","phone_id_hash":"` + hash + `","public_key":"` + key + `","signature":"AAAA"}`, "invalid_signature_encoding"},
		{"ErrDecisionWeakKey", `{"type":"decision","decision":"approve","public_key":"` + weak + `"}`, "weak_public_key"},
		{"OK/Deny", `{"type":"decision","decision":"deny"}`, ""},
		{"OK/Profile", `{"type":"profile","name":" Ada ","email":"ada@example.com"}`, ""},
		{"ErrMalformed", `{`, "malformed_frame"},
		{"ErrTrailing", `{"type":"profile"} {}`, "malformed_frame"},
		{"ErrUnknownField", `{"type":"profile","admin":true}`, "malformed_frame"},
		{"ErrUnknownType", `{"type":"hello"}`, "unknown_type"},
		{"ErrShortPSK", `{"type":"join","psk":"abc","device_id":"` + string(dev) + `","phone_id_hash":"` + hash + `"}`, "invalid_psk"},
		{"ErrDeviceID", `{"type":"join","psk":"` + psk + `","device_id":"d_x","phone_id_hash":"` + hash + `"}`, "invalid_device_id"},
		{"ErrPhoneHash", `{"type":"join","psk":"` + psk + `","device_id":"` + string(dev) + `","phone_id_hash":"ABC"}`, "invalid_phone_id_hash"},
		{"ErrDecision", `{"type":"decision","decision":"yes"}`, "invalid_decision"},
		{"ErrSignature", `{"type":"decision","decision":"approve","signature":"AAAA"}`, "invalid_signature_encoding"},
		{"ErrPublicKey", `{"type":"decision","decision":"approve","public_key":"AAAA"}`, "invalid_public_key"},
		{"ErrEmail", `{"type":"profile","email":"nope"}`, "invalid_email"},
		{"ErrName", `{"type":"profile","name":"a\nb"}`, "invalid_name"},
		{"ErrTooLarge", `{"type":"profile","name":"` + strings.Repeat("a", qrauth.MaxFrameSize) + `"}`, "frame_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := qrauth.DecodeAppFrame([]byte(tc.frame))
			if tc.reason == "" {
				if err != nil || f == nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			if qrauth.ErrorCode(err) != qrauth.EINVALID || qrauth.ErrorReason(err) != tc.reason {
				t.Fatalf("err %v, want %s", err, tc.reason)
			}
		})
	}
}

func TestDecisionSignature(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := priv.Public().(ed25519.PublicKey)
	d := qrauth.Decision{Origin: "https://login.example.com", Room: "room", Nonce: "nonce", Mode: qrauth.ModeLogin,
		DeviceID: qrauth.DeviceIDFromKey(pub), PhoneIDHash: strings.Repeat("0", 64), Decision: qrauth.DecisionApprove}
	want := "qrauth-v1 decision\norigin=https://login.example.com\nroom=room\nnonce=nonce\nmode=login\ndevice=" +
		string(d.DeviceID) + "\nphone=" + d.PhoneIDHash + "\ndecision=approve\n"
	if got := string(d.SignedBytes()); got != want {
		t.Fatalf("signed bytes\n%q\nwant\n%q", got, want)
	}
	sig := d.Sign(priv)
	if err := d.Verify(pub, sig); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*qrauth.Decision){
		"Origin":   func(d *qrauth.Decision) { d.Origin = "https://evil.example" },
		"Room":     func(d *qrauth.Decision) { d.Room = "other" },
		"Nonce":    func(d *qrauth.Decision) { d.Nonce = "other" },
		"Mode":     func(d *qrauth.Decision) { d.Mode = qrauth.ModeLink },
		"Decision": func(d *qrauth.Decision) { d.Decision = qrauth.DecisionDeny },
		"Newline":  func(d *qrauth.Decision) { d.Room = "room\nnonce=x" },
	} {
		t.Run("Err"+name, func(t *testing.T) {
			e := d
			edit(&e)
			if err := e.Verify(pub, sig); qrauth.ErrorReason(err) != "bad_signature" {
				t.Fatalf("verified after changing %s: %v", name, err)
			}
		})
	}
}

func TestNormalizePhone(t *testing.T) {
	for in, want := range map[string]string{
		"+41 79 123 45 67":    "+41791234567",
		"0041 79 123 45 67":   "+41791234567",
		"+41 (0)79 123 45 67": "+41791234567",
		"+1 (202) 555-0100":   "+12025550100",
		"079 123 45 67":       "",
		"+41 79 ABC":          "",
		"+1234":               "",
	} {
		got, err := qrauth.NormalizePhone(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	a := qrauth.PhoneIDHash([]byte("salt"), "+41791234567")
	if !qrauth.ValidPhoneIDHash(a) || a == qrauth.PhoneIDHash([]byte("other salt"), "+41791234567") {
		t.Fatal("hash not salted or malformed")
	}
}

func TestErrorTable(t *testing.T) {
	for code, status := range map[string]int{
		qrauth.EINVALID: 400, qrauth.EUNAUTHORIZED: 401, qrauth.ENOTFOUND: 404, qrauth.ECONFLICT: 409,
		qrauth.EEXPIRED: 410, qrauth.ERATELIMITED: 429, qrauth.EINTERNAL: 500, "bogus": 500,
	} {
		if qrauth.HTTPStatus(code) != status || qrauth.CloseCode(code) != 4000+status {
			t.Errorf("%s: %d %d", code, qrauth.HTTPStatus(code), qrauth.CloseCode(code))
		}
	}
	if qrauth.ErrorMessage(json.Unmarshal([]byte("{"), new(any))) == "" {
		t.Fatal("foreign error has no message")
	}
}

// FuzzDecodeAppFrame: no input panics, and anything accepted re-encodes
// and decodes to the same frame.
func FuzzDecodeAppFrame(f *testing.F) {
	f.Add([]byte(`{"type":"join","psk":"AAAAAAAAAAAAAAAAAAAAAA","device_id":"d_AAAAAAAAAAAAAAAAAAAAAA","phone_id_hash":"` + strings.Repeat("0", 64) + `"}`))
	f.Add([]byte(`{"type":"decision","decision":"approve","profile":{"name":"x","email":"a@b.c"}}`))
	f.Add([]byte(`{"type":"profile","name":"Ada"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := qrauth.DecodeAppFrame(data)
		if err != nil {
			if qrauth.ErrorCode(err) != qrauth.EINVALID {
				t.Fatalf("error of code %s: %v", qrauth.ErrorCode(err), err)
			}
			return
		}
		again, _ := json.Marshal(fr)
		fr2, err := qrauth.DecodeAppFrame(again)
		if err != nil {
			t.Fatalf("accepted %q but not its re-encoding %q: %v", data, again, err)
		}
		b1, _ := json.Marshal(fr2)
		if string(b1) != string(again) {
			t.Fatalf("not stable: %s vs %s", again, b1)
		}
	})
}

func FuzzDecodeBrowserFrame(f *testing.F) {
	f.Add([]byte(`{"type":"profile","name":"Ada","email":"ada@example.com"}`))
	f.Add([]byte(`{"type":"profile"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := qrauth.DecodeBrowserFrame(data)
		if err != nil {
			if qrauth.ErrorCode(err) != qrauth.EINVALID {
				t.Fatalf("error of code %s: %v", qrauth.ErrorCode(err), err)
			}
			return
		}
		p := qrauth.Profile{Name: fr.Name, Email: fr.Email}
		if err := p.Normalize(); err != nil || p.Name != fr.Name || p.Email != fr.Email {
			t.Fatalf("accepted a profile that does not normalise to itself: %+v", fr)
		}
	})
}

// docKey is the example key of docs/protocol.md §5: the seed 01 02 … 20.
func docKey() ed25519.PrivateKey {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// docJoin is the join of the worked example in docs/protocol.md §9.
func docJoin() qrauth.Join {
	return qrauth.Join{Origin: "https://login.example.com", PSK: "aJo_KCwHYlaGRwkyU-OiXw",
		DeviceID:    qrauth.DeviceIDFromKey(docKey().Public().(ed25519.PublicKey)),
		PhoneIDHash: "73913b6509ff7e465e4329d705195340fa781798ab404034fa9272cea3a93edd"}
}

// TestJoinWorkedExample recomputes the worked example of the signed join
// and checks that docs/protocol.md shows exactly it, so the document cannot
// drift from the code.
func TestJoinWorkedExample(t *testing.T) {
	priv := docKey()
	pub := priv.Public().(ed25519.PublicKey)
	j := docJoin()
	want := "qrauth-v2 join\norigin=https://login.example.com\n" +
		"psk-sha256=417eed2327d5b17ba23249297bc8af97550877a637a14eef6f91568b36c8d905\n" +
		"device=d_ZbYGc9btiEvwHCwiLYKtoA\nphone=73913b6509ff7e465e4329d705195340fa781798ab404034fa9272cea3a93edd\n"
	if got := string(j.SignedBytes()); got != want {
		t.Fatalf("signed bytes\n%q\nwant\n%q", got, want)
	}
	sig := j.Sign(priv)
	if err := j.Verify(pub, sig); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(sig)
	frame, _ := json.Marshal(qrauth.AppFrame{Type: qrauth.MsgJoin, PSK: j.PSK, DeviceID: j.DeviceID, PhoneIDHash: j.PhoneIDHash,
		PublicKey: base64.RawURLEncoding.EncodeToString(pub), Signature: sig})
	if _, err := qrauth.DecodeAppFrame(frame); err != nil {
		t.Fatalf("the example frame does not decode: %v", err)
	}
	doc, err := os.ReadFile("docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"```\n" + want + "```\n",                      // the bytes, one line each
		strconv.Quote(want),                           // as a Go literal
		fmt.Sprintf("The %d bytes signed", len(want)), // the count
		sig,                     // base64url
		hex.EncodeToString(raw), // hex
		string(frame),           // the frame
		fmt.Sprintf("version %d", qrauth.ProtocolVersion),
		fmt.Sprintf(`"protocol_version": %d`, qrauth.ProtocolVersion),
	} {
		if !strings.Contains(string(doc), s) {
			t.Errorf("docs/protocol.md lacks %q", s)
		}
	}
	// Each field changed changes the bytes: nothing is left out.
	for _, alt := range []qrauth.Join{
		{Origin: "https://evil.example", PSK: j.PSK, DeviceID: j.DeviceID, PhoneIDHash: j.PhoneIDHash},
		{Origin: j.Origin, PSK: "bJo_KCwHYlaGRwkyU-OiXw", DeviceID: j.DeviceID, PhoneIDHash: j.PhoneIDHash},
		{Origin: j.Origin, PSK: j.PSK, DeviceID: "d_AAAAAAAAAAAAAAAAAAAAAA", PhoneIDHash: j.PhoneIDHash},
		{Origin: j.Origin, PSK: j.PSK, DeviceID: j.DeviceID, PhoneIDHash: strings.Repeat("0", 64)},
	} {
		if alt.Verify(pub, sig) == nil {
			t.Errorf("signature verifies for %+v", alt)
		}
	}
	if strings.Contains(want, j.PSK) {
		t.Fatal("the raw PSK is in the signed bytes")
	}
}

// FuzzSignedJoin: no input panics in decoding or verifying a join, and a
// join that verifies carries an acceptable key that is its device's.
func FuzzSignedJoin(f *testing.F) {
	priv := docKey()
	pub := priv.Public().(ed25519.PublicKey)
	j := docJoin()
	good, _ := json.Marshal(qrauth.AppFrame{Type: qrauth.MsgJoin, PSK: j.PSK, DeviceID: j.DeviceID, PhoneIDHash: j.PhoneIDHash,
		PublicKey: base64.RawURLEncoding.EncodeToString(pub), Signature: j.Sign(priv)})
	f.Add(good)
	f.Add([]byte(strings.Replace(string(good), `"psk":"a`, `"psk":"b`, 1)))
	f.Add([]byte(strings.Replace(string(good), `"public_key":"e`, `"public_key":"AQ`, 1)))
	f.Add([]byte(`{"type":"join","psk":"AAAAAAAAAAAAAAAAAAAAAA","device_id":"d_AAAAAAAAAAAAAAAAAAAAAA","phone_id_hash":"` + strings.Repeat("0", 64) + `"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := qrauth.DecodeAppFrame(data)
		if err != nil {
			if qrauth.ErrorCode(err) != qrauth.EINVALID {
				t.Fatalf("error of code %s: %v", qrauth.ErrorCode(err), err)
			}
			return
		}
		if fr.Type != qrauth.MsgJoin {
			return
		}
		key, err := base64.RawURLEncoding.DecodeString(fr.PublicKey)
		if err != nil || qrauth.CheckPublicKey(key) != nil || qrauth.DeviceIDFromKey(key) != fr.DeviceID {
			t.Fatalf("accepted a join whose key is malformed, weak or not its device's: %q", data)
		}
		jj := qrauth.Join{Origin: j.Origin, PSK: fr.PSK, DeviceID: fr.DeviceID, PhoneIDHash: fr.PhoneIDHash}
		if err := jj.Verify(key, fr.Signature); err != nil {
			if qrauth.ErrorCode(err) != qrauth.EUNAUTHORIZED || qrauth.ErrorReason(err) != "bad_signature" {
				t.Fatalf("refusal %v", err)
			}
			return
		}
		// Verified: only the example key signs, so it must be the
		// example's join itself (Ed25519 signatures are not malleable in
		// crypto/ed25519: S is checked to be reduced).
		if !bytes.Equal(key, pub) || jj != j {
			t.Fatalf("a join other than the example verifies: %+v", jj)
		}
	})
}
