package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"

	"github.com/qrauth/qrauth/oath"
	"github.com/qrauth/qrauth/server/oathflow"
)

// oathOn reports whether the OATH flow is listed: -oath, or a policy that
// asks for codes (which needs the flow).
func (m *Main) oathOn() bool {
	return m.OATHOn || (m.OATH.Policy != "" && m.OATH.Policy != oathflow.PolicyOff)
}

// oathFlags adds the flags of the oath flow to fs, into m.Config.
func (m *Main) oathFlags(fs *flag.FlagSet, e *flagEnv) {
	c := &m.OATH
	fs.BoolVar(&m.OATHOn, "oath", env("OATH", "") == "true",
		"let users enrol authenticator apps (TOTP/HOTP) as a second factor; needs the master key (QRAUTH_OATH=true)")
	c.Policy = oathflow.Policy(env("OATH_POLICY", string(oathflow.PolicyOff)))
	fs.StringVar((*string)(&c.Policy), "oath-policy", string(c.Policy),
		"when a sign-in asks for an authenticator code after the QR scan: off, if-enrolled or required (enables -oath) (QRAUTH_OATH_POLICY)")
	fs.StringVar(&c.Issuer, "oath-issuer", env("OATH_ISSUER", oathflow.DefaultIssuer), "name authenticator apps show for this service (QRAUTH_OATH_ISSUER)")
	c.Kind = oath.Kind(env("OATH_KIND", string(oathflow.DefaultKind)))
	fs.StringVar((*string)(&c.Kind), "oath-kind", string(c.Kind), "kind of new tokens: totp or hotp (QRAUTH_OATH_KIND)")
	c.Algorithm = oath.Algorithm(env("OATH_ALGORITHM", string(oathflow.DefaultAlgorithm)))
	fs.StringVar((*string)(&c.Algorithm), "oath-algorithm", string(c.Algorithm),
		"HMAC of new tokens: SHA1 (what every app supports), SHA256 or SHA512 (QRAUTH_OATH_ALGORITHM)")
	fs.IntVar(&c.Digits, "oath-digits", e.int("OATH_DIGITS", oathflow.DefaultDigits), "digits of a code: 6 or 8 (QRAUTH_OATH_DIGITS)")
	fs.DurationVar(&c.Period, "oath-period", e.duration("OATH_PERIOD", oathflow.DefaultPeriod), "TOTP time step (QRAUTH_OATH_PERIOD)")
	c.Behind = zeroIsNone(e.int("OATH_WINDOW_BEHIND", oathflow.DefaultWindow))
	c.Ahead = zeroIsNone(e.int("OATH_WINDOW_AHEAD", oathflow.DefaultWindow))
	c.LookAhead = zeroIsNone(e.int("OATH_HOTP_LOOK_AHEAD", oathflow.DefaultLookAhead))
	fs.Var(countFlag{&c.Behind}, "oath-window-behind", "TOTP codes accepted from this many time steps before the expected one (QRAUTH_OATH_WINDOW_BEHIND)")
	fs.Var(countFlag{&c.Ahead}, "oath-window-ahead", "TOTP codes accepted from this many time steps after the expected one (QRAUTH_OATH_WINDOW_AHEAD)")
	fs.Var(countFlag{&c.LookAhead}, "oath-hotp-look-ahead", "HOTP codes accepted this many counters past the expected one (QRAUTH_OATH_HOTP_LOOK_AHEAD)")
	c.MaxOffset = zeroIsNone(e.int("OATH_MAX_OFFSET", oathflow.DefaultMaxOffset))
	fs.Var(countFlag{&c.MaxOffset}, "oath-max-offset", "TOTP clock drift followed, in time steps either way; 0 follows none (QRAUTH_OATH_MAX_OFFSET)")
	c.MaxFailures = zeroIsNone(e.int("OATH_MAX_FAILURES", oathflow.DefaultMaxFailures))
	fs.Var(countFlag{&c.MaxFailures}, "oath-max-failures", "wrong codes in a row that lock an authenticator until an admin unlocks it; 0 never locks (QRAUTH_OATH_MAX_FAILURES)")
	c.KeepSecret = env("OATH_OVERWRITE", "true") == "false"
	fs.Var(invertedBool{&c.KeepSecret}, "oath-overwrite",
		"re-enrolment makes a new secret; false shows the existing TOTP secret again, to add a second app (QRAUTH_OATH_OVERWRITE)")

	// The letter directory defaults to "letters" next to the database, and
	// -data may come after this flag on the command line, so the -data flag
	// is wrapped to move the default along until -oath-letter-dir is given.
	c.LetterDir = env("OATH_LETTER_DIR", filepath.Join(filepath.Dir(m.DataPath), "letters"))
	_, explicit := os.LookupEnv("QRAUTH_OATH_LETTER_DIR")
	fs.Func("oath-letter-dir", "directory for activation letters (PDF); default: letters/ next to -data (QRAUTH_OATH_LETTER_DIR)", func(v string) error {
		c.LetterDir, explicit = v, true
		return nil
	})
	if f := fs.Lookup("data"); f != nil {
		f.Value = &followData{Value: f.Value, fn: func(path string) {
			if !explicit {
				c.LetterDir = filepath.Join(filepath.Dir(path), "letters")
			}
		}}
	}
}

// zeroIsNone maps a flag's "0 means none" to the config's "negative means
// none" (where 0 means the default).
func zeroIsNone(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// countFlag is an int flag where 0 means none (stored as -1, see
// zeroIsNone).
type countFlag struct{ p *int }

func (f countFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.Itoa(max(*f.p, 0))
}

func (f countFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errBadCount
	}
	*f.p = zeroIsNone(n)
	return nil
}

var errBadCount = errors.New("want a whole number, 0 or more")

// invertedBool is a boolean flag stored negated: -oath-overwrite=false sets
// KeepSecret.
type invertedBool struct{ p *bool }

func (f invertedBool) String() string   { return strconv.FormatBool(f.p == nil || !*f.p) }
func (f invertedBool) IsBoolFlag() bool { return true }
func (f invertedBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*f.p = !v
	return nil
}

// followData passes -data on and tells fn.
type followData struct {
	flag.Value
	fn func(string)
}

// String handles the zero followData, which the flag package makes to
// find out whether a default is worth printing.
func (f *followData) String() string {
	if f == nil || f.Value == nil {
		return ""
	}
	return f.Value.String()
}

func (f *followData) Set(s string) error {
	if err := f.Value.Set(s); err != nil {
		return err
	}
	f.fn(s)
	return nil
}
