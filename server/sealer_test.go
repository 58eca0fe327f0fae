package server

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/qrauth/qrauth"
)

func TestSealer(t *testing.T) {
	master := bytes.Repeat([]byte{7}, 32)
	a, _ := newSealer(master, "oath", rand.Reader)
	b, _ := newSealer(master, "badge", rand.Reader)
	sealed, err := a.seal([]byte("secret"), []byte("u_1"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := a.open(sealed, []byte("u_1")); err != nil || string(pt) != "secret" {
		t.Fatalf("%q %v", pt, err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for name, try := range map[string]func() ([]byte, error){
		"OtherOwner":   func() ([]byte, error) { return a.open(sealed, []byte("u_2")) },
		"OtherPurpose": func() ([]byte, error) { return b.open(sealed, []byte("u_1")) },
		"Tampered":     func() ([]byte, error) { return a.open(tampered, []byte("u_1")) },
		"Short":        func() ([]byte, error) { return a.open(sealed[:5], []byte("u_1")) },
	} {
		if _, err := try(); qrauth.ErrorReason(err) != "sealed_invalid" {
			t.Errorf("%s: %v", name, err)
		}
	}
}
