package main

import (
	"bufio"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/server/oidcflow"
)

// The config file (-config, docs/configuration.md) is TOML read with
// BurntSushi/toml: its keys are the flags' names, and every value goes
// through the flag's own Set, so each flag has a key, typed and checked as
// on the command line, without a second list of settings to keep in step.
// Precedence: flag > QRAUTH_* environment > file > default.

// configKeyClients is the file's array of [[oidc-client]] tables.
const configKeyClients = "oidc-client"

// configFlags adds -config.
func (m *Main) configFlags(fs *flag.FlagSet) {
	fs.StringVar(&m.ConfigFile, "config", env("CONFIG", ""),
		"TOML file of settings, keyed by flag name, and of OpenID Connect clients; flags and QRAUTH_* win over it (QRAUTH_CONFIG)")
}

// applyConfigFile sets, from -config, every flag that neither the command
// line nor its environment variable set.
func (m *Main) applyConfigFile(fs *flag.FlagSet) error {
	if m.ConfigFile == "" {
		return nil
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		// Set and empty counts as unset, as env() reads it for most flags.
		if name := flagEnvName(f); name != "" && os.Getenv(name) != "" {
			given[f.Name] = true
		}
	})
	return m.loadConfig(fs, m.ConfigFile, given)
}

// flagEnvName is the QRAUTH_* variable a flag's usage names last ("" if
// none): forward-auth-rule's is QRAUTH_FORWARD_AUTH_RULES, so the name is
// read rather than derived.
func flagEnvName(f *flag.Flag) string {
	i := strings.LastIndex(f.Usage, "(QRAUTH_")
	if i < 0 {
		return ""
	}
	s := f.Usage[i+1:]
	end := strings.IndexFunc(s, func(r rune) bool { return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') })
	if end < 0 {
		end = len(s)
	}
	return s[:end]
}

// repeatable says whether a flag may be given more than once (its help
// says so); only those take a list in the file.
func repeatable(f *flag.Flag) bool { return strings.Contains(f.Usage, "repeatable") }

// fileClient is one [[oidc-client]] table.
type fileClient struct {
	ID             string   `toml:"id"`
	Name           string   `toml:"name"`
	Type           string   `toml:"type"` // public or confidential
	RedirectURIs   []string `toml:"redirect-uris"`
	PostLogoutURIs []string `toml:"post-logout-redirect-uris"`
	Scopes         []string `toml:"scopes"`
	SkipConsent    bool     `toml:"skip-consent"`
	SecretHash     string   `toml:"secret-hash"`
	IDTokenAlg     string   `toml:"id-token-alg"`
}

// loadConfig reads the file at path into fs (but not the flags in skip)
// and m.OIDCConfig.Clients. It reports every problem, each naming the file
// and the key, and sets nothing from a file with one.
func (m *Main) loadConfig(fs *flag.FlagSet, path string, skip map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var raw map[string]toml.Primitive
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s: line %d: %s", path, pe.Position.Line, pe.Message)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{path}, args...)...))
	}
	// badKey is bad for a top-level key, with its line: FILE:LINE: ...
	badKey := func(name, format string, args ...any) {
		at := path
		if line := keyLine(md, raw[name]); line > 0 {
			at = fmt.Sprintf("%s:%d", path, line)
		}
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{at}, args...)...))
	}
	type setting struct{ name, value string }
	var sets []setting
	var clients []oidcflow.ConfigClient
	clientsRead := true // false once the tables did not decode, which leaves all their keys undecoded
	seen := map[string]bool{}
	for _, key := range md.Keys() {
		// Inside a table are the oidc-client fields, checked below; each
		// [[oidc-client]] repeats its key.
		if len(key) != 1 || seen[key[0]] {
			continue
		}
		name := key[0]
		seen[name] = true
		if name == configKeyClients {
			var list []fileClient
			if err := md.PrimitiveDecode(raw[name], &list); err != nil {
				bad("%s: %v", name, err)
				clientsRead = false
				continue
			}
			clients = configClients(list, bad)
			continue
		}
		f := fs.Lookup(name)
		switch {
		case name == "config":
			badKey(name, "key config: a config file cannot name another")
			continue
		case f == nil && removedFlags[name] != "":
			badKey(name, "key %s was removed: %s", name, removedFlags[name])
			continue
		case f == nil:
			badKey(name, "unknown key %q: qrauthd has no flag -%s (qrauthd -h lists them)", name, name)
			continue
		}
		var v any
		if err := md.PrimitiveDecode(raw[name], &v); err != nil {
			badKey(name, "key %s: %v", name, err)
			continue
		}
		values, ok := v.([]any)
		if !ok {
			values = []any{v}
		} else if !repeatable(f) {
			badKey(name, "key %s takes one value, not a list", name)
			continue
		}
		for _, v := range values {
			s, err := configValue(v)
			if err != nil {
				badKey(name, "key %s: %v", name, err)
				continue
			}
			sets = append(sets, setting{name, s})
		}
	}
	for _, key := range md.Undecoded() {
		if clientsRead && len(key) > 1 && key[0] == configKeyClients {
			bad("unknown key %q in an [[oidc-client]] table (docs/configuration.md lists them)", key[len(key)-1])
		}
	}
	// Every value through its flag's own parser, so that a value the
	// command line would refuse is refused here, naming the key: first
	// on a scratch FlagSet, so that a file with a bad value sets nothing.
	scratch, _ := NewMain().flagSet()
	for _, s := range sets {
		if err := scratch.Set(s.name, s.value); err != nil {
			f := scratch.Lookup(s.name)
			kind, _ := flag.UnquoteUsage(f)
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				kind = " (want true or false)"
			} else if kind != "" {
				kind = " (want a " + kind + ")"
			}
			badKey(s.name, "key %s: bad value %q%s: %v", s.name, s.value, kind, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, s := range sets {
		if !skip[s.name] {
			if err := fs.Set(s.name, s.value); err != nil {
				return fmt.Errorf("%s: key %s: %w", path, s.name, err)
			}
		}
	}
	m.OIDCConfig.Clients = clients
	return nil
}

// keyLine is the line of a top-level key, 0 if unknown. BurntSushi/toml
// tells a key's position only in the ParseError that an Unmarshaler's
// error becomes, so a probe that always fails asks it.
func keyLine(md toml.MetaData, p toml.Primitive) int {
	var pe toml.ParseError
	if errors.As(md.PrimitiveDecode(p, new(lineProbe)), &pe) {
		return pe.Position.Line
	}
	return 0
}

type lineProbe struct{}

var errLineProbe = errors.New("line probe")

func (*lineProbe) UnmarshalTOML(any) error { return errLineProbe }

// configValue is a TOML scalar as the command line would write it.
func configValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case map[string]any:
		return "", errors.New("a table where a value belongs")
	case []any:
		return "", errors.New("a list inside a list")
	}
	return "", fmt.Errorf("a %T is no flag value; write durations as strings, e.g. \"2m\"", v)
}

// configClients turns the file's [[oidc-client]] tables into the flow's
// clients, checking each as `qrauthd admin oidc clients add` does
// (oidcflow.ConfigClients).
func configClients(list []fileClient, bad func(string, ...any)) []oidcflow.ConfigClient {
	out := make([]oidcflow.ConfigClient, 0, len(list))
	for i, fc := range list {
		cc := oidcflow.ConfigClient{ClientRequest: oidcflow.ClientRequest{ID: fc.ID, Name: fc.Name,
			RedirectURIs: fc.RedirectURIs, PostLogoutURIs: fc.PostLogoutURIs, Public: fc.Type == "public",
			Scopes: fc.Scopes, SkipConsent: fc.SkipConsent, IDTokenAlg: fc.IDTokenAlg}, SecretHash: fc.SecretHash}
		where := fmt.Sprintf("[[oidc-client]] %d (id %q)", i+1, fc.ID)
		if fc.Type != "public" && fc.Type != "confidential" {
			bad("%s: type is public or confidential, not %q", where, fc.Type)
			continue
		}
		if _, err := cc.Client(time.Now()); err != nil {
			bad("%s: %s", where, errorMessage(err))
			continue
		}
		out = append(out, cc)
	}
	if _, err := oidcflow.ConfigClients(out, time.Now()); err != nil {
		bad("%s", errorMessage(err))
	}
	return out
}

// errorMessage is the sentence for people of a *qrauth.Error.
func errorMessage(err error) string {
	var e *qrauth.Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}

// runConfig runs `qrauthd config check FILE | example`.
func runConfig(args []string, stdout, stderr io.Writer) int {
	const usage = "Usage: qrauthd config check FILE   check a config file (exit 0 and \"ok\", or 1 and its problems)\n" +
		"       qrauthd config example      print a commented example file\n\n" +
		"The file is TOML; its keys are the flags' names (docs/configuration.md). The check reads no database.\n"
	switch {
	case len(args) == 2 && args[0] == "check":
		m := NewMain()
		fs, _ := m.flagSet()
		err := m.loadConfig(fs, args[1], nil)
		if err == nil {
			err = m.afterParse(fs)
		}
		if err == nil {
			// What Run checks before it opens anything.
			m.LogOutput = io.Discard
			_, err = m.logger()
		}
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, "ok")
		return 0
	case len(args) == 1 && args[0] == "example":
		fmt.Fprint(stdout, exampleConfig)
		return 0
	case len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprint(stderr, usage)
	return 2
}

// exampleConfig is `qrauthd config example`; docs/configuration.md shows
// the same file (TestConfigExampleInDocs).
//
//go:embed config.example.toml
var exampleConfig string

// runOIDC runs `qrauthd oidc hash-secret`: a client secret on stdin, the
// form the config file's secret-hash holds on stdout.
func runOIDC(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "hash-secret" {
		const usage = "Usage: qrauthd oidc hash-secret < SECRET\n\n" +
			"Reads a client secret on stdin and prints its hash for an [[oidc-client]]'s secret-hash in the config file.\n"
		if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprint(stderr, usage)
		return 2
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintf(stderr, "qrauthd oidc hash-secret: %v\n", err)
		return 1
	}
	secret := strings.TrimRight(line, "\r\n")
	// The store keeps a plain SHA-256 hash, which only a long random
	// secret makes safe against guessing.
	if len(secret) < minClientSecret {
		fmt.Fprintf(stderr, "qrauthd oidc hash-secret: the secret has %d characters; use a random one of at least %d, e.g. from: openssl rand -base64 32\n",
			len(secret), minClientSecret)
		return 1
	}
	fmt.Fprintln(stdout, oidcflow.HashSecret(secret))
	return 0
}

// minClientSecret is the shortest secret hash-secret accepts: 32
// characters of base64 carry 192 bits.
const minClientSecret = 32
