package testutil

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// OTP is an RFC 4226/6238 implementation of the tests' own, with
// crypto/hmac only, so that the server's library is checked against
// something independent of it (pinned to the RFCs' vectors in
// cmd/qrauthd's TestOATHOwnOTPMatchesRFC).
func OTP(secret []byte, alg string, digits int, counter uint64) string {
	h := map[string]func() hash.Hash{"SHA1": sha1.New, "SHA256": sha256.New, "SHA512": sha512.New}[alg]
	mac := hmac.New(h, secret)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	code := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, code%mod)
}

// OTPKey is what an authenticator app reads from an otpauth:// URI.
type OTPKey struct {
	URI    *url.URL
	Base32 string
	Secret []byte
	Alg    string
	Digits int
	Period int64
}

// ParseOTPAuth reads a TOTP otpauth:// URI as an authenticator app does.
func ParseOTPAuth(t testing.TB, raw string) *OTPKey {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" {
		t.Fatalf("not a TOTP otpauth URI: %q (%v)", raw, err)
	}
	q := u.Query()
	k := &OTPKey{URI: u, Base32: q.Get("secret"), Alg: q.Get("algorithm"), Digits: 6, Period: 30}
	if k.Secret, err = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(k.Base32); err != nil || len(k.Secret) == 0 {
		t.Fatalf("secret of %s: %v", raw, err)
	}
	if d, err := strconv.Atoi(q.Get("digits")); err == nil {
		k.Digits = d
	}
	if p, err := strconv.ParseInt(q.Get("period"), 10, 64); err == nil {
		k.Period = p
	}
	if k.Alg == "" {
		k.Alg = "SHA1"
	}
	return k
}

// Step is the TOTP time step of now.
func (k *OTPKey) Step() uint64 { return uint64(time.Now().Unix() / k.Period) }

// Code is the key's code for step.
func (k *OTPKey) Code(step uint64) string { return OTP(k.Secret, k.Alg, k.Digits, step) }
