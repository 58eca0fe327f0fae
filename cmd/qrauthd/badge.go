package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/qrauth/qrauth/server/badgeflow"
)

// badgeFlags adds the flags of the badge flow to fs, into m.Config.
func (m *Main) badgeFlags(fs *flag.FlagSet, e *flagEnv) {
	c := &m.Badge
	fs.BoolVar(&m.BadgeOn, "badges", env("BADGES", "") == "true",
		"printed QR login badges and passwords; needs the master key (-key-file) (QRAUTH_BADGES=true)")
	fs.BoolVar(&c.InsecureScans, "badge-insecure-scans", env("BADGE_INSECURE_SCANS", "") == "true",
		"accept insecure badges (a username substitute), always followed by a second factor (QRAUTH_BADGE_INSECURE_SCANS=true)")
	fs.StringVar(&c.Policy, "badge-policy", env("BADGE_POLICY", badgeflow.BadgeFirstStep),
		"first-step: a badge starts a sign-in and identifies its holder; method: a badge is asked for after the phone (QRAUTH_BADGE_POLICY)")
	c.SecondFactors = splitList(env("BADGE_SECOND_FACTORS", ""))
	fs.Func("badge-second-factors", "what may follow an insecure badge: password, phone or both, comma-separated (default both) (QRAUTH_BADGE_SECOND_FACTORS)",
		func(s string) error {
			c.SecondFactors = splitList(s)
			return nil
		})
	fs.StringVar(&c.SelfIssue, "badge-self-issue", env("BADGE_SELF_ISSUE", badgeflow.SelfIssueNone),
		"badges users may print for themselves: none, secure or any (QRAUTH_BADGE_SELF_ISSUE)")
	def := badgeflow.DefaultPasswordParams
	uintFlag(fs, e, &c.Password.Time, "password-time", "PASSWORD_TIME", def.Time, 100, "argon2id passes for new password hashes")
	uintFlag(fs, e, &c.Password.Memory, "password-memory", "PASSWORD_MEMORY", def.Memory, 4<<20, "argon2id memory in KiB for new password hashes")
	// Threads is a uint8 in the config; the flag keeps a uint32 and
	// copies it over on every change.
	var threads uint32
	v := uintFlag(fs, e, &threads, "password-threads", "PASSWORD_THREADS", uint32(def.Threads), 255, "argon2id lanes for new password hashes")
	v.after = func() { c.Password.Threads = uint8(threads) }
	v.after()
}

// uintValue is a flag of a whole number from 1 to max.
type uintValue struct {
	p     *uint32
	max   uint32
	after func()
}

func (v *uintValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return strconv.FormatUint(uint64(*v.p), 10)
}

func (v *uintValue) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil || n == 0 || uint32(n) > v.max {
		return fmt.Errorf("want a whole number from 1 to %d", v.max)
	}
	*v.p = uint32(n)
	if v.after != nil {
		v.after()
	}
	return nil
}

// uintFlag registers a whole-number flag whose default comes from
// QRAUTH_<envName>. An environment value that does not parse is recorded
// in e, so that ParseFlags refuses it and says why, as for a bad flag.
func uintFlag(fs *flag.FlagSet, e *flagEnv, p *uint32, name, envName string, def, max uint32, usage string) *uintValue {
	v := &uintValue{p: p, max: max}
	*p = def
	if s := env(envName, ""); s != "" {
		if err := v.Set(s); err != nil {
			e.fail(envName, fmt.Errorf("%q: %w", s, err))
		}
	}
	fs.Var(v, name, fmt.Sprintf("%s (QRAUTH_%s)", usage, envName))
	return v
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
