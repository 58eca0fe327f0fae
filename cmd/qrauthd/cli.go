package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qrauth/qrauth/internal/buildinfo"
	"github.com/qrauth/qrauth/store"
)

// run is the whole program: a subcommand, or the server until ctx ends. It
// returns the exit status: 0 done, 1 failed, 2 used wrongly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "admin":
			return runAdmin(ctx, args[1:], stdout, stderr)
		case "genkey":
			return runGenkey(args[1:], stdout, stderr)
		case "check":
			return runCheck(args[1:], stdout, stderr)
		case "config":
			return runConfig(args[1:], stdout, stderr)
		case "oidc":
			return runOIDC(args[1:], os.Stdin, stdout, stderr)
		case "backup":
			return runBackup(args[1:], stdout, stderr)
		case "version":
			return runVersion(args[1:], stdout, stderr)
		case "healthcheck":
			return runHealthcheck(ctx, args[1:], stdout, stderr)
		case "help":
			if len(args) > 1 && args[1] != "help" {
				// `qrauthd help admin` is `qrauthd admin -h`.
				return run(ctx, []string{args[1], "-h"}, stdout, stderr)
			}
			args = []string{"-h"}
		}
	}
	m := NewMain()
	if err := m.ParseFlags(args, stdout); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		fmt.Fprintf(stderr, "qrauthd: %v (qrauthd -h lists the flags)\n", err)
		return 2
	}
	// SIGHUP reads the TLS files again now (they are also reloaded when
	// they change). Caught from before the server listens, so a SIGHUP
	// sent once it answers can never end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := m.Run(); err != nil {
		fmt.Fprintln(stderr, "qrauthd:", err)
		return 1
	}
	for done := false; !done; {
		select {
		case <-hup:
			m.Server.ReloadTLS() // logs what it did, and keeps the old pair on failure
		case <-ctx.Done():
			done = true
		}
	}
	if err := m.Close(); err != nil {
		fmt.Fprintln(stderr, "qrauthd:", err)
		return 1
	}
	return 0
}

// flagGroups orders the help. Every flag is in exactly one group
// (TestHelpListsEveryFlag).
var flagGroups = []struct {
	title string
	names []string
}{
	{"Serving", []string{"config", "addr", "origin", "tls-cert", "tls-key", "acme-domain", "acme-cache", "acme-directory", "acme-email", "trusted-proxies", "cookie-domain", "data", "store", "redis", "redis-prefix", "redis-ca", "check-on-start", "key-file", "admin-socket"}},
	{"Phone sign-in", []string{"room-ttl", "psk-rotation", "session-ttl", "ticket-ttl", "recovery-link-ttl"}},
	{"Limits", []string{"max-rooms", "room-rate", "room-burst", "app-rate", "app-burst"}},
	{"Offline codes and transaction approval", []string{"offline", "offline-otp-length", "offline-max-attempts", "offline-ttl",
		"offline-approval-ttl", "offline-api-token-file"}},
	{"Authenticator apps (OATH)", []string{"oath", "oath-policy", "oath-issuer", "oath-kind", "oath-algorithm", "oath-digits",
		"oath-period", "oath-window-behind", "oath-window-ahead", "oath-hotp-look-ahead", "oath-max-offset", "oath-max-failures",
		"oath-overwrite", "oath-letter-dir"}},
	{"Badges and passwords", []string{"badges", "badge-insecure-scans", "badge-policy", "badge-second-factors", "badge-self-issue",
		"password-time", "password-memory", "password-threads"}},
	{"Forward auth for reverse proxies", []string{"forward-auth-domains", "forward-auth-rule"}},
	{"OpenID Connect provider", []string{"oidc", "oidc-key-grace"}},
	{"Logging, metrics and debugging", []string{"log-level", "log-format", "metrics-addr", "debug-addr"}},
}

// placeholders name a flag's value where its type says too little.
var placeholders = map[string]string{
	"addr": "HOST:PORT", "debug-addr": "HOST:PORT", "metrics-addr": "HOST:PORT", "origin": "URL", "trusted-proxies": "CIDR,...",
	"acme-domain": "LIST", "acme-cache": "DIR", "acme-directory": "URL", "acme-email": "ADDRESS",
	"data": "FILE", "config": "FILE", "store": "URL", "redis": "URL", "redis-prefix": "TEXT", "redis-ca": "FILE", "tls-cert": "FILE", "tls-key": "FILE", "key-file": "FILE", "offline-api-token-file": "FILE",
	"admin-socket": "PATH", "oath-letter-dir": "DIR", "check-on-start": "auto|true|false",
	"log-level": "LEVEL", "log-format": "FORMAT", "badge-second-factors": "LIST",
	"cookie-domain": "DOMAIN", "forward-auth-domains": "LIST", "forward-auth-rule": "HOST=ROLES",
	"oath-policy": "POLICY", "oath-kind": "KIND", "oath-algorithm": "ALG", "badge-policy": "POLICY", "badge-self-issue": "WHICH",
}

const subcommandHelp = `Usage: qrauthd [FLAGS]          serve
       qrauthd COMMAND [ARGS]

Commands:
  check [FILE]       check a stopped server's database file (default -data); exit 1 on any problem
  backup FILE        copy a stopped server's database to FILE (running: qrauthd admin backup FILE)
  admin COMMAND      manage users on a running server (qrauthd admin -h lists the commands)
  config check FILE  check a -config file without opening the database; config example prints one
  oidc hash-secret   read an OpenID Connect client secret on stdin, print its hash for the config file
  genkey             print a new master key for -key-file
  version            print the version and source revision
  healthcheck        GET a running server's /healthz; exit 0 if healthy (for container health checks)
  help [COMMAND]     this help, or a command's

Every flag can also be set as QRAUTH_<NAME> (QRAUTH_ROOM_TTL for -room-ttl), or as the key
<name> in the -config file (room-ttl = "2m"); a flag wins over the environment, which wins over the file.
`

// printUsage writes the grouped help: one line per flag.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, subcommandHelp)
	for _, g := range flagGroups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, name := range g.names {
			f := fs.Lookup(name)
			if f == nil {
				continue
			}
			kind, usage := flag.UnquoteUsage(f)
			if p, ok := placeholders[name]; ok {
				kind = p
			} else if kind != "" {
				kind = map[string]string{"duration": "DURATION", "string": "TEXT"}[kind]
				if kind == "" {
					kind = "N" // int, uint, float, and our own number flags
				}
			}
			left := "  -" + name
			if kind != "" {
				left += " " + kind
			}
			// The environment variable is in the general note above.
			if i := strings.LastIndex(usage, " (QRAUTH_"); i > 0 {
				usage = usage[:i]
			}
			if d := f.DefValue; d != "" && d != "0" && d != "false" && !strings.Contains(usage, "default") {
				usage += " [" + d + "]"
			}
			fmt.Fprintf(w, "%-34s %s\n", left, usage)
		}
	}
}

// checkOnStartLimit is the largest file that -check-on-start=auto checks.
// Measured (store.TestMeasureCheck, shared 2-core machine): a 16 MiB file
// takes 0.13 s, a 138 MiB one 2.0 s; 64 MiB keeps a restart under a second.
const checkOnStartLimit = 64 << 20

// checkOnStartFlag is auto, true or false; a bare -check-on-start is true.
type checkOnStartFlag string

func (f *checkOnStartFlag) String() string {
	if f == nil || *f == "" {
		return "auto"
	}
	return string(*f)
}

func (f *checkOnStartFlag) Set(s string) error {
	if _, err := parseCheckOnStart(s); err != nil {
		return err
	}
	*f = checkOnStartFlag(s)
	return nil
}

func (f *checkOnStartFlag) IsBoolFlag() bool { return true }

// parseCheckOnStart returns the size limit a mode means: -1 never, 0 always.
func parseCheckOnStart(s string) (int64, error) {
	if s == "auto" || s == "" {
		return checkOnStartLimit, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return 0, fmt.Errorf("want auto, true or false, not %q", s)
	} else if b {
		return 0, nil
	}
	return -1, nil
}

// checkOnStart runs the full check before serving, as -check-on-start
// asks, and refuses to serve a file with problems. Weak device keys are
// only logged: they endanger one account, and the server refuses to verify
// with them anyway.
func (m *Main) checkOnStart(db *store.DB, log *slog.Logger) error {
	limit, _ := parseCheckOnStart(m.CheckOnStart)
	fi, err := os.Stat(db.Path())
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if limit < 0 || (limit > 0 && fi.Size() > limit) {
		log.Info("database check skipped", slog.Int64("bytes", fi.Size()), slog.String("check_on_start", m.CheckOnStart))
		return nil
	}
	start := time.Now()
	if probs := db.Problems(); len(probs) > 0 {
		return fmt.Errorf("database %s failed its check (%s), the first: %v\n"+
			"Restore it from a backup; `qrauthd check FILE` lists every problem", db.Path(), problems(len(probs)), probs[0])
	}
	for _, err := range db.WeakKeys() {
		log.Warn("weak device key", slog.Any("err", err))
	}
	log.Info("database checked", slog.Int64("bytes", fi.Size()), slog.Duration("took", time.Since(start)))
	return nil
}

// runCheck runs `qrauthd check [FILE]`: the file's size against its meta
// pages, bbolt's page check, every index of every flow against its records,
// and device key strength.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("qrauthd check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	usage := "Usage: qrauthd check [FILE]\n\nChecks the database file (default: -data / QRAUTH_DATA, data/qrauth.db) of a stopped\n" +
		"server and lists every problem. Exit status 0: no problem, 1: problems or the file could not be read.\n"
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	} else if err != nil || fs.NArg() > 1 {
		if err == nil {
			err = errors.New("give at most one file")
		}
		fmt.Fprintf(stderr, "qrauthd check: %v (qrauthd check -h)\n", err)
		return 2
	}
	path := env("DATA", DefaultDataPath)
	if fs.NArg() == 1 {
		path = fs.Arg(0)
	}
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(stderr, "qrauthd check: %v\n", err)
		return 1
	}
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if errors.Is(err, store.ErrLocked) {
		fmt.Fprintf(stderr, "qrauthd check: %s is in use by a running server: stop it first, or check a copy\n", path)
		return 1
	} else if err != nil {
		fmt.Fprintf(stderr, "qrauthd check: %v\n", err)
		return 1
	}
	defer db.Close()
	start := time.Now()
	// The version first: it says which qrauthd may serve the file (a
	// read-only open upgrades nothing, so an older file shows its own).
	if v, err := db.Version(); err == nil {
		fmt.Fprintf(stdout, "%s: schema version %d (this qrauthd writes %d)\n", path, v, store.SchemaVersion())
	}
	probs := append(db.Problems(), db.WeakKeys()...)
	for _, p := range probs {
		// One line each: errors.Join inside a finding would split it.
		fmt.Fprintf(stdout, "%s: %s\n", path, strings.ReplaceAll(p.Error(), "\n", "; "))
	}
	if len(probs) > 0 {
		fmt.Fprintf(stderr, "qrauthd check: %s: %s\n", path, problems(len(probs)))
		return 1
	}
	fmt.Fprintf(stdout, "%s: no problems (pages, indexes, device keys; %s)\n", path, time.Since(start).Round(time.Millisecond))
	return 0
}

// runVersion prints the module version and the source revision it was
// built from, as the Go toolchain recorded them.
func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			fmt.Fprintln(stdout, "Usage: qrauthd version")
			return 0
		}
		fmt.Fprintln(stderr, "qrauthd version: takes no arguments")
		return 2
	}
	fmt.Fprintln(stdout, versionString())
	return 0
}

// versionString is the line `qrauthd version` prints (internal/buildinfo:
// the stamped release version, else what the toolchain recorded).
func versionString() string { return buildinfo.String("qrauthd") }

func problems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}
