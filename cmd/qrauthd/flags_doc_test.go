package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth/server/badgeflow"
)

// flagDocs are the files whose flag tables document qrauthd's flags:
// README's table the core's, each flow's document its own.
var flagDocs = []string{"../../README.md", "../../docs/offline.md", "../../docs/oath.md", "../../docs/badge.md"}

// derivedDefaults are the flags whose default is worked out at start (the
// flag itself defaults to empty), with what the tables say about them.
var derivedDefaults = map[string]string{
	"origin":                 "http://ADDR",
	"admin-socket":           defaultAdminSocket(DefaultDataPath),
	"oath-letter-dir":        "letters/ next to -data",
	"badge-second-factors":   strings.Join(badgeflow.DefaultSecondFactors, ","),
	"offline-api-token-file": "none",
	"store":                  "none",
	"acme-cache":             "acme/ next to -data",
}

var (
	docFlagRe = regexp.MustCompile("`-([a-z0-9-]+)`")
	tickRe    = regexp.MustCompile("`([^`]*)`")
)

// docFlagTables returns flag name → default as the tables of the flag
// documents say, and the file of each; a flag in two tables is an error.
func docFlagTables(t *testing.T) (defaults, where map[string]string) {
	t.Helper()
	defaults, where = map[string]string{}, map[string]string{}
	for _, file := range flagDocs {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		col := -1 // the "default" column of the table being read, -1 outside one
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(line, "|") {
				col = -1
				continue
			}
			cells := strings.Split(strings.Trim(strings.ReplaceAll(line, `\|`, "\x00"), "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(strings.ReplaceAll(cells[i], "\x00", "|"))
			}
			if strings.HasPrefix(cells[0], "flag") {
				col = -1
				for i, c := range cells {
					if c == "default" {
						col = i
					}
				}
				continue
			}
			if col < 0 || col >= len(cells) || strings.HasPrefix(cells[0], "---") {
				continue
			}
			names := docFlagRe.FindAllStringSubmatch(cells[0], -1)
			values := []string{cells[col]}
			if len(names) > 1 && cells[col] != "" {
				values = strings.Split(cells[col], ", ")
				if len(values) != len(names) {
					t.Errorf("%s: %d flags but %d defaults in %q", file, len(names), len(values), line)
					continue
				}
			}
			for i, m := range names {
				v := values[0]
				if len(values) > 1 {
					v = values[i]
				}
				if prev, ok := where[m[1]]; ok {
					t.Errorf("-%s is documented in %s and again in %s", m[1], prev, file)
				}
				defaults[m[1]] = strings.TrimSpace(tickRe.ReplaceAllString(v, "$1"))
				where[m[1]] = file
			}
		}
	}
	return defaults, where
}

// sameDefault says whether a table's default means the flag's.
func sameDefault(f *flag.Flag, doc string) bool {
	if want, ok := derivedDefaults[f.Name]; ok && f.DefValue == "" {
		return doc == want
	}
	switch {
	case doc == f.DefValue:
		return true
	case doc == "off":
		return f.DefValue == "false"
	}
	a, errA := time.ParseDuration(doc)
	b, errB := time.ParseDuration(f.DefValue)
	return errA == nil && errB == nil && a == b
}

// TestFlagTablesMatchFlags reads the flag tables of README and the flows'
// documents and compares them with the flags, both ways: every flag is in
// exactly one table with the default the flag really has, and every flag
// in a table exists. The flags default to the constants beside the
// configs (server.Default*, DefaultDataPath, ...), so this pins the
// documents to those.
func TestFlagTablesMatchFlags(t *testing.T) {
	// Defaults as a fresh process sees them, whatever this one's
	// environment holds.
	clearEnv(t)
	docs, where := docFlagTables(t)
	if len(docs) < 20 {
		t.Fatalf("found only %d documented flags; the table pattern is broken", len(docs))
	}
	fs, e := NewMain().flagSet()
	if err := e.err(); err != nil {
		t.Fatal(err)
	}
	fs.VisitAll(func(f *flag.Flag) {
		doc, ok := docs[f.Name]
		if !ok {
			t.Errorf("-%s (default %q) is in no flag table of %v", f.Name, f.DefValue, flagDocs)
			return
		}
		delete(docs, f.Name)
		if !sameDefault(f, doc) {
			t.Errorf("%s: -%s defaults to %q, the flag to %q", where[f.Name], f.Name, doc, f.DefValue)
		}
	})
	for name := range docs {
		t.Errorf("%s documents -%s, which is not a flag", where[name], name)
	}
}
