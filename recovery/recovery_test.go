package recovery_test

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/recovery"
)

func TestNewCode(t *testing.T) {
	// All-ones input gives the last letter everywhere; all zeroes the first.
	c, err := recovery.NewCode(bytes.NewReader(bytes.Repeat([]byte{0xff}, 10)))
	if err != nil || c != "ZZZZ-ZZZZ-ZZZZ-ZZZZ" {
		t.Fatalf("NewCode(ff...) = %q, %v", c, err)
	}
	// 0x08 0x86 0x42 ... : 00001 00010 00011 00100 ... reads 1 2 3 4 ...
	c, err = recovery.NewCode(bytes.NewReader([]byte{0x08, 0x86, 0x42, 0x98, 0xe8, 0x4a, 0x96, 0xc6, 0xb9, 0xf0}))
	if err != nil || c != "1234-5678-9ABC-DEFG" {
		t.Fatalf("NewCode(counting) = %q, %v", c, err)
	}
	seen := map[string]bool{}
	for range 100 {
		c, err := recovery.NewCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		n, err := recovery.Normalize(c)
		if err != nil || len(n) != recovery.CodeLen || recovery.Format(n) != c || seen[n] {
			t.Fatalf("code %q normalizes to %q, %v", c, n, err)
		}
		seen[n] = true
	}
	if _, err := recovery.NewCode(bytes.NewReader(nil)); err == nil {
		t.Fatal("NewCode with no randomness succeeded")
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ABCD-EFGH-JKMN-PQRS", "ABCDEFGHJKMNPQRS"},
		{"abcd efgh jkmn pqrs", "ABCDEFGHJKMNPQRS"},
		{"oOiI-lL00-1111-2222", "0011110011112222"},
	} {
		got, err := recovery.Normalize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "ABCD", "ABCD-EFGH-JKMN-PQRSX", "ABCD-EFGH-JKMN-PQRU", "ABCD-EFGH-JKMN-PQR\u00e9", "ABCD\nEFGH-JKMN-PQRS"} {
		_, err := recovery.Normalize(in)
		if qrauth.ErrorCode(err) != qrauth.EINVALID || !strings.Contains(qrauth.ErrorMessage(err), "16") {
			t.Errorf("Normalize(%q) error = %v, want EINVALID", in, err)
		}
	}
}

func TestHash(t *testing.T) {
	a := recovery.Hash([]byte("k1"), "ABCDEFGHJKMNPQRS")
	if len(a) != recovery.HashLen || bytes.Equal(a, recovery.Hash([]byte("k2"), "ABCDEFGHJKMNPQRS")) ||
		!bytes.Equal(a, recovery.Hash([]byte("k1"), "ABCDEFGHJKMNPQRS")) {
		t.Fatal("Hash is not a keyed, deterministic 32-byte hash")
	}
}

// FuzzNormalize: typed input never panics; what is accepted is CodeLen
// characters of the alphabet, normalizes to itself, and reads back from
// its grouped form.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"ABCD-EFGH-JKMN-PQRS", "abcd efgh jkmn pqrs", "oOiI-lL00-1111-2222", "", "ABCD\x00EFGH", "ÀBCD-EFGH-JKMN-PQRS"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := recovery.Normalize(s)
		if err != nil {
			if qrauth.ErrorCode(err) != qrauth.EINVALID {
				t.Fatalf("error of code %s", qrauth.ErrorCode(err))
			}
			return
		}
		if len(n) != recovery.CodeLen || strings.Trim(n, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != "" {
			t.Fatalf("Normalize(%q) = %q", s, n)
		}
		if again, err := recovery.Normalize(recovery.Format(n)); err != nil || again != n {
			t.Fatalf("Format(%q) reads back as %q, %v", n, again, err)
		}
	})
}
