package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
)

// loadMasterKey reads the master key from the file, or from QRAUTH_KEY,
// as base64 of 32 bytes. No key at all is not an error here: the flows
// that need one refuse to start without it and say how to make one.
func loadMasterKey(file string) ([]byte, error) {
	var text string
	switch {
	case file != "":
		fi, err := os.Stat(file)
		if err != nil {
			return nil, fmt.Errorf("key file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("key file %s is readable by others (mode %o): chmod 600 it", file, fi.Mode().Perm())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("key file: %w", err)
		}
		text = string(b)
	case os.Getenv("QRAUTH_KEY") != "":
		text = os.Getenv("QRAUTH_KEY")
	default:
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("the master key must be base64 of 32 bytes; make one with `qrauthd genkey > key && chmod 600 key`")
	}
	return key, nil
}

// runGenkey prints a new random master key.
func runGenkey(args []string, out, errOut io.Writer) int {
	const usage = "Usage: qrauthd genkey > qrauth.key && chmod 600 qrauth.key"
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprintln(out, usage)
		return 0
	} else if len(args) != 0 {
		fmt.Fprintln(errOut, usage)
		return 2
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		fmt.Fprintln(errOut, "qrauthd genkey:", err)
		return 1
	}
	fmt.Fprintln(out, base64.StdEncoding.EncodeToString(key))
	return 0
}
