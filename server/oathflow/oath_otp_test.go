package oathflow

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth/oath"
)

// Seeds of RFC 6238 Appendix B: the ASCII digits repeated to the hash's
// block size (RFC 4226 Appendix D uses the SHA-1 one).
var (
	rfcSeed1   = []byte("12345678901234567890")
	rfcSeed256 = []byte("12345678901234567890123456789012")
	rfcSeed512 = []byte("1234567890123456789012345678901234567890123456789012345678901234")
)

func TestOATHRFC4226Vectors(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	tok := &oath.Token{Kind: oath.HOTP, Algorithm: oath.SHA1, Digits: 6}
	for i, w := range want {
		got, err := oathCode(tok, rfcSeed1, uint64(i))
		if err != nil || got != w {
			t.Errorf("HOTP counter %d = %q, %v; want %s", i, got, err, w)
		}
	}
}

func TestOATHRFC6238Vectors(t *testing.T) {
	for _, v := range []struct {
		unix int64
		alg  oath.Algorithm
		want string
	}{
		{59, oath.SHA1, "94287082"},
		{59, oath.SHA256, "46119246"},
		{59, oath.SHA512, "90693936"},
		{1111111109, oath.SHA1, "07081804"},
		{1111111109, oath.SHA256, "68084774"},
		{1111111109, oath.SHA512, "25091201"},
		{1111111111, oath.SHA1, "14050471"},
		{1111111111, oath.SHA256, "67062674"},
		{1111111111, oath.SHA512, "99943326"},
		{1234567890, oath.SHA1, "89005924"},
		{1234567890, oath.SHA256, "91819424"},
		{1234567890, oath.SHA512, "93441116"},
		{2000000000, oath.SHA1, "69279037"},
		{2000000000, oath.SHA256, "90698825"},
		{2000000000, oath.SHA512, "38618901"},
		{20000000000, oath.SHA1, "65353130"},
		{20000000000, oath.SHA256, "77737706"},
		{20000000000, oath.SHA512, "47863826"},
	} {
		seed := map[oath.Algorithm][]byte{oath.SHA1: rfcSeed1, oath.SHA256: rfcSeed256, oath.SHA512: rfcSeed512}[v.alg]
		tok := &oath.Token{Kind: oath.TOTP, Algorithm: v.alg, Digits: 8, Period: 30}
		// Through the verifier, as a sign-in would: the vector's code is
		// accepted at the vector's time, exactly at its own time step.
		cfg := oathTestConfig(t, Config{Digits: 8, Behind: -1, Ahead: -1})
		m, err := cfg.match(tok, seed, v.want, 0, 0, time.Unix(v.unix, 0))
		if err != nil || m.Counter != uint64(v.unix/30) || m.Offset != 0 {
			t.Errorf("T=%d %s: match %+v, %v", v.unix, v.alg, m, err)
		}
	}
}

func oathTestConfig(t *testing.T, c Config) *Config {
	t.Helper()
	c, err := c.withDefaults(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestOATHWindowEdges checks the TOTP window at its edges: a code from the
// last step inside the window is accepted, one step further is refused.
func TestOATHWindowEdges(t *testing.T) {
	tok := &oath.Token{Kind: oath.TOTP, Algorithm: oath.SHA1, Digits: 6, Period: 30}
	now := time.Unix(1_700_000_000, 0)
	cur := int64(now.Unix() / 30)
	for _, tc := range []struct {
		name          string
		cfg           Config
		offset        int64
		accept        []int64 // steps relative to cur
		refuse        []int64
		wantOffsetFor map[int64]int64
	}{
		{name: "Default", accept: []int64{-1, 0, 1}, refuse: []int64{-3, -2, 2, 3}},
		{name: "Behind2Ahead0", cfg: Config{Behind: 2, Ahead: -1}, accept: []int64{-2, -1, 0}, refuse: []int64{-3, 1}},
		{name: "Exact", cfg: Config{Behind: -1, Ahead: -1}, accept: []int64{0}, refuse: []int64{-1, 1}},
		// A drift of +3 moves the window, and the current step stays in.
		{name: "Drift", offset: 3, accept: []int64{-1, 0, 1, 2, 3, 4}, refuse: []int64{-2, 5}},
		// MaxOffset caps how far a drift is followed.
		{name: "MaxOffset", cfg: Config{MaxOffset: 3}, offset: 3, accept: []int64{3}, refuse: []int64{4, -4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oathTestConfig(t, tc.cfg)
			for _, d := range tc.accept {
				code, _ := oathCode(tok, rfcSeed1, uint64(cur+d))
				m, err := cfg.match(tok, rfcSeed1, code, 0, tc.offset, now)
				if err != nil || m.Counter != uint64(cur+d) || m.Offset != d {
					t.Errorf("step %+d: %+v %v, want accepted with offset %d", d, m, err, d)
				}
			}
			for _, d := range tc.refuse {
				code, _ := oathCode(tok, rfcSeed1, uint64(cur+d))
				if m, err := cfg.match(tok, rfcSeed1, code, 0, tc.offset, now); err != errOATHWrongCode {
					t.Errorf("step %+d: %+v %v, want wrong code", d, m, err)
				}
			}
		})
	}
	t.Run("Replay", func(t *testing.T) {
		cfg := oathTestConfig(t, Config{})
		code, _ := oathCode(tok, rfcSeed1, uint64(cur))
		if _, err := cfg.match(tok, rfcSeed1, code, uint64(cur)+1, 0, now); err != errOATHReplayed {
			t.Fatalf("used step: %v", err)
		}
		code, _ = oathCode(tok, rfcSeed1, uint64(cur+1))
		if _, err := cfg.match(tok, rfcSeed1, code, uint64(cur)+1, 0, now); err != nil {
			t.Fatalf("next step: %v", err)
		}
	})
}

func TestOATHHOTPWindow(t *testing.T) {
	tok := &oath.Token{Kind: oath.HOTP, Algorithm: oath.SHA1, Digits: 6}
	cfg := oathTestConfig(t, Config{LookAhead: 3})
	code := func(c uint64) string { s, _ := oathCode(tok, rfcSeed1, c); return s }
	for _, tc := range []struct {
		next, counter uint64
		err           error
	}{
		{5, 5, nil}, {5, 8, nil}, {5, 9, errOATHWrongCode}, {5, 4, errOATHReplayed}, {5, 2, errOATHReplayed}, {0, 0, nil},
	} {
		m, err := cfg.match(tok, rfcSeed1, code(tc.counter), tc.next, 0, time.Now())
		if err != tc.err || (err == nil && m.Counter != tc.counter) {
			t.Errorf("next %d, code of %d: %+v %v, want %v", tc.next, tc.counter, m, err, tc.err)
		}
	}
}

func TestOATHURI(t *testing.T) {
	for _, kind := range []oath.Kind{oath.TOTP, oath.HOTP} {
		tok := &oath.Token{Kind: kind, Algorithm: oath.SHA256, Digits: 8, Period: 60}
		k, err := oathURI(tok, rfcSeed1, "Acme Login", "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(k.URI)
		if err != nil || u.Scheme != "otpauth" || u.Host != string(kind) || u.Path != "/Acme Login:ada@example.com" {
			t.Fatalf("%s: %s %v", kind, k.URI, err)
		}
		q := u.Query()
		want := map[string]string{"secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "issuer": "Acme Login", "algorithm": "SHA256", "digits": "8"}
		if kind == oath.TOTP {
			want["period"] = "60"
		} else {
			want["counter"] = "0"
		}
		for k, v := range want {
			if q.Get(k) != v {
				t.Errorf("%s: %s=%q, want %q (%s)", kind, k, q.Get(k), v, u)
			}
		}
	}
}

func TestOATHConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		key  []byte
		want string
	}{
		{Config{}, nil, "qrauthd genkey"},
		{Config{Policy: PolicyRequired}, nil, "qrauthd genkey"},
		{Config{Policy: "sometimes"}, make([]byte, 32), "policy"},
		{Config{Digits: 7}, make([]byte, 32), "digits"},
		{Config{Algorithm: "MD5"}, make([]byte, 32), "algorithm"},
		{Config{Issuer: "a:b"}, make([]byte, 32), "issuer"},
		{Config{Period: 1500 * time.Millisecond}, make([]byte, 32), "period"},
	} {
		_, err := tc.cfg.withDefaults(tc.key)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error about %s", tc.cfg, err, tc.want)
		}
	}
	// The defaults with a key are fine. (A flow that is off is not listed
	// by cmd/qrauthd at all, so it needs no key.)
	if _, err := (Config{}).withDefaults(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
}
