package keys_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/keys"
)

var master = bytes.Repeat([]byte{7}, 32)

// zeros is a nonce source for known answers.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestKnownAnswers pins the labels: these values were computed by the code
// before the hierarchy moved here, and sealed secrets and printed badges in
// the field depend on them.
func TestKnownAnswers(t *testing.T) {
	for p, want := range map[keys.Purpose]string{
		keys.OATH:    "0000000000000000000000006f224dbece16d8210ee9ba394d98cd2010ecb026a219",
		keys.Offline: "000000000000000000000000cfd9edbb74fda484fe6cecff29c494a06d4814fe4ab8",
	} {
		s, err := keys.NewSealer(master, p, zeros{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Seal([]byte("secret"), []byte("u_1"))
		if err != nil {
			t.Fatal(err)
		} else if hex.EncodeToString(got) != want {
			t.Errorf("%s: sealed %x, want %s", p, got, want)
		}
	}

	k, err := keys.BadgeInsecureKey(master)
	if err != nil {
		t.Fatal(err)
	} else if got := hex.EncodeToString(k); got != "a1865db30427fca94eef5fbf70db1ba84705beb93a05c45b0c51cf648a6f8e97" {
		t.Errorf("insecure badge key %s", got)
	}
	id := bytes.Repeat([]byte{1}, 16)
	m := hmac.New(sha256.New, k)
	m.Write([]byte("QRB1I"))
	m.Write(id)
	if got := hex.EncodeToString(m.Sum(nil)[:16]); got != "419e4c6c6142e57a2d73e89a36db9acf" {
		t.Errorf("insecure badge tag %s", got)
	}

	// A secure badge of u_alice sealed under stamp 9…9 with a zero nonce.
	raw, _ := base64.RawURLEncoding.DecodeString("AQEBAQEBAQEBAQEBAQEBAQAAAAAAAAAAAAAAACg1_zgPXfh89cS57keTppaOAIaLPjAyhEdbW8ph4xIl")
	aead, err := keys.BadgeCredentialAEAD(master, "u_alice", bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ad := append([]byte("QRB1S"), id...)
	ad = append(ad, "u_alice"...)
	if pt, err := aead.Open(nil, raw[16:28], raw[28:], ad); err != nil || !bytes.Equal(pt, id) {
		t.Errorf("secure badge does not open: %x %v", pt, err)
	}
}

func TestSealer(t *testing.T) {
	a, _ := keys.NewSealer(master, keys.OATH, rand.Reader)
	b, _ := keys.NewSealer(master, keys.Offline, rand.Reader)
	sealed, err := a.Seal([]byte("secret"), []byte("u_1"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := a.Open(sealed, []byte("u_1")); err != nil || string(pt) != "secret" {
		t.Fatalf("%q %v", pt, err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for name, try := range map[string]func() ([]byte, error){
		"OtherOwner":   func() ([]byte, error) { return a.Open(sealed, []byte("u_2")) },
		"OtherPurpose": func() ([]byte, error) { return b.Open(sealed, []byte("u_1")) },
		"Tampered":     func() ([]byte, error) { return a.Open(tampered, []byte("u_1")) },
		"Short":        func() ([]byte, error) { return a.Open(sealed[:5], []byte("u_1")) },
	} {
		if _, err := try(); qrauth.ErrorReason(err) != "sealed_invalid" {
			t.Errorf("%s: %v", name, err)
		}
	}
}
