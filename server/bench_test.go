package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// BenchmarkPSK: a fresh 128-bit PSK, as every rotation makes.
func BenchmarkPSK(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := qrauth.RandomToken(rand.Reader, 16); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyDecision: checking a phone's signed decision.
func BenchmarkVerifyDecision(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	d := wire.Decision{Origin: "https://login.example.com", Room: strings.Repeat("r", 22), Nonce: strings.Repeat("n", 43),
		Mode: wire.ModeLogin, DeviceID: qrauth.DeviceIDFromKey(pub), PhoneIDHash: strings.Repeat("a", 64), Decision: wire.DecisionApprove}
	sig := d.Sign(priv)
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Verify(pub, sig); err != nil {
			b.Fatal(err)
		}
	}
}
