package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/qrauth/qrauth/server/offlineflow"
)

// offlineFlags adds the flags of the offline flow to fs, into m.Config.
func (m *Main) offlineFlags(fs *flag.FlagSet, e *flagEnv) {
	c := &m.Offline
	fs.BoolVar(&m.OfflineOn, "offline", env("OFFLINE", "") == "true",
		"offline QR codes and transaction approval: phones that activated them sign in, or approve, with a one-time code "+
			"also without network; needs the master key (QRAUTH_OFFLINE=true)")
	fs.IntVar(&c.OTPLength, "offline-otp-length", e.int("OFFLINE_OTP_LENGTH", offlineflow.DefaultOTPLength), "digits of an offline code, 4 to 9 (QRAUTH_OFFLINE_OTP_LENGTH)")
	fs.IntVar(&c.MaxAttempts, "offline-max-attempts", e.int("OFFLINE_MAX_ATTEMPTS", offlineflow.DefaultMaxAttempts),
		"wrong codes, counted per phone and method across sessions, that lock the method until unlocked (QRAUTH_OFFLINE_MAX_ATTEMPTS)")
	fs.DurationVar(&c.SessionTTL, "offline-ttl", e.duration("OFFLINE_TTL", offlineflow.DefaultSessionTTL), "how long an offline code stays valid (QRAUTH_OFFLINE_TTL)")
	fs.DurationVar(&c.ApprovalTTL, "offline-approval-ttl", e.duration("OFFLINE_APPROVAL_TTL", offlineflow.DefaultApprovalTTL),
		"how long an online transaction approval waits for the phone (QRAUTH_OFFLINE_APPROVAL_TTL)")
	load := func(path string) error {
		toks, err := readTokenFile(path)
		if err != nil {
			return err
		}
		c.APITokens = toks
		return nil
	}
	if path := env("OFFLINE_API_TOKEN_FILE", ""); path != "" {
		if err := load(path); err != nil {
			e.fail("OFFLINE_API_TOKEN_FILE", err)
		}
	}
	fs.Func("offline-api-token-file", "file with the bearer tokens of relying sites for the offline API, one per line "+
		"(make each with qrauthd genkey; mode 0600) (QRAUTH_OFFLINE_API_TOKEN_FILE)", load)
}

// readTokenFile reads bearer tokens, one per line; blank lines and lines
// starting with # are skipped. The file must not be open to other users.
func readTokenFile(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token file %s is readable by others (mode %o): chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var toks []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		toks = append(toks, line)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("token file %s holds no token", path)
	}
	return toks, sc.Err()
}
