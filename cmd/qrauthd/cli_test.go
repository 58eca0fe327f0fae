package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/store"
	bolt "go.etcd.io/bbolt"
)

// runCLI runs the program as main does and returns its exit status and
// output. The context is already done, so a server that does start stops
// again at once.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// Before: -h printed 99 lines ending in "panic calling String method on
// zero main.followData", and so did every bad flag.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 || errOut != "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
		for _, want := range []string{"Commands:", "check [FILE]", "admin COMMAND", "genkey", "version", "Serving:", "-data FILE", "-check-on-start"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: help lacks %q", args, want)
			}
		}
		if strings.Contains(out, "panic") || strings.Contains(out, "-key-file qrauthd") {
			t.Errorf("%v: help:\n%s", args, out)
		}
	}
	for _, args := range [][]string{{"admin", "-h"}, {"help", "admin"}, {"check", "-h"}, {"genkey", "-h"}, {"version", "-h"}} {
		if code, out, errOut := runCLI(t, args...); code != 0 || out == "" || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

func TestBadFlagIsOneLine(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-room-ttl", "soon"}, {"admin", "-nope"}, {"check", "-nope"}, {"-check-on-start=maybe"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || strings.Contains(errOut, "panic") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// Every flag is listed in exactly one group of the help.
func TestHelpListsEveryFlag(t *testing.T) {
	seen := map[string]int{}
	for _, g := range flagGroups {
		for _, n := range g.names {
			seen[n]++
		}
	}
	fs, _ := NewMain().flagSet()
	fs.VisitAll(func(f *flag.Flag) {
		if seen[f.Name] != 1 {
			t.Errorf("flag -%s is in %d groups of the help", f.Name, seen[f.Name])
		}
		delete(seen, f.Name)
	})
	for n := range seen {
		t.Errorf("help lists -%s, which does not exist", n)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "qrauthd github.com/qrauth/qrauth ") || !strings.Contains(out, "revision ") {
		t.Errorf("exit %d, %q", code, out)
	}
}

// Before: the list of bad variables was global and never emptied, so one
// bad environment failed every later ParseFlags in the process.
func TestBadEnvironmentDoesNotStick(t *testing.T) {
	t.Setenv("QRAUTH_ROOM_TTL", "soon")
	if err := NewMain().ParseFlags(nil, nil); err == nil || !strings.Contains(err.Error(), "QRAUTH_ROOM_TTL") {
		t.Fatalf("ParseFlags = %v", err)
	}
	os.Unsetenv("QRAUTH_ROOM_TTL")
	if err := NewMain().ParseFlags(nil, nil); err != nil {
		t.Fatalf("after fixing the environment: %v", err)
	}
}

// validDB writes a database of n users with sessions and returns its path
// and bytes.
func validDB(t *testing.T, n int) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qrauth.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	for i := range n {
		u := &qrauth.User{ID: qrauth.UserID(fmt.Sprintf("u_%05d", i)), Name: strings.Repeat("x", 200), PhoneIDHash: fmt.Sprint("phone", i), CreatedAt: now}
		d := &qrauth.Device{ID: qrauth.DeviceID(fmt.Sprintf("d_%05d", i)), UserID: u.ID, PublicKey: pub, PhoneIDHash: u.PhoneIDHash, CreatedAt: now}
		if err := db.CreateUser(t.Context(), u, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// Measured before: the first 16 KiB of a valid file made the server die of
// SIGSEGV inside bbolt at open; half a file started and died at the first
// session list; zeroed pages answered 500s, then a panic ended the process.
func TestDamagedDatabaseRefusedAtStart(t *testing.T) {
	_, valid := validDB(t, 300)
	if len(valid) < 64<<10 {
		t.Fatalf("fixture only %d bytes", len(valid))
	}
	zeroed := bytes.Clone(valid)
	for p := len(zeroed) / 4096 / 3; p < len(zeroed)/4096/3+10; p++ {
		clear(zeroed[p*4096 : (p+1)*4096])
	}
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"First16KiB":  {valid[:16<<10], "truncated"},
		"Half":        {valid[:len(valid)/2], "truncated"},
		"ZeroedPages": {zeroed, "failed its check"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "qrauth.db")
			if err := os.WriteFile(path, c.b, 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := runCLI(t, "-addr", "127.0.0.1:0", "-data", path, "-admin-socket", "off", "-log-level", "error")
			if code != 1 || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "qrauthd check") {
				t.Fatalf("exit %d, stderr:\n%s", code, errOut)
			}
			if n := strings.Count(errOut, path); n != 1 {
				t.Errorf("the message names the file %d times:\n%s", n, errOut)
			}
			// qrauthd check says the same and exits 1.
			if code, _, errOut := runCLI(t, "check", path); code != 1 || errOut == "" {
				t.Errorf("check: exit %d, stderr %q", code, errOut)
			}
		})
	}
}

func TestCheckCommand(t *testing.T) {
	path, _ := validDB(t, 5)
	code, out, errOut := runCLI(t, "check", path)
	if code != 0 || !strings.Contains(out, "no problems") || !strings.Contains(out, "schema version 1 (this qrauthd writes 1)") {
		t.Fatalf("valid file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Plant an index entry of a flow (badges) that points nowhere: the
	// old check ignored the flows' indexes.
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("badges_by_user")).Put([]byte("u_00001/b_gone"), []byte("b_gone"))
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "check", path)
	if code != 1 || !strings.Contains(out, `badge index entry "u_00001/b_gone"`) || !strings.Contains(errOut, "1 problem") {
		t.Fatalf("planted entry: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The same file is refused at start.
	code, _, errOut = runCLI(t, "-addr", "127.0.0.1:0", "-data", path, "-admin-socket", "off", "-log-level", "error")
	if code != 1 || !strings.Contains(errOut, "failed its check") {
		t.Fatalf("start: exit %d, stderr %q", code, errOut)
	}
	// ... unless the operator says not to check.
	code, _, errOut = runCLI(t, "-addr", "127.0.0.1:0", "-data", path, "-admin-socket", "off", "-log-level", "error", "-check-on-start=false")
	if code != 0 {
		t.Fatalf("start without check: exit %d, stderr %q", code, errOut)
	}
}

func TestCheckRunningServer(t *testing.T) {
	m := MustRunMain(t)
	code, _, errOut := runCLI(t, "check", m.DataPath)
	if code != 1 || !strings.Contains(errOut, "in use by a running server") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// Main closes the database Run opened (the server leaves the store it is
// given open): after Close the file opens again at once, where bbolt's
// lock would otherwise make store.Open wait.
func TestCloseClosesTheDatabase(t *testing.T) {
	m := MustRunMain(t)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(m.DataPath, store.Options{})
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	db.Close()
}
