package testutil

import (
	"os"
	"strings"
	"testing"
)

// TestedBlock returns the fenced block that follows the marker
// `<!-- tested: NAME -->` (or `<!-- tested: NAME (where) -->`) in the
// document at path: the configs the docs give that a test runs verbatim.
func TestedBlock(t testing.TB, path, name string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var rest string
	for _, m := range []string{"<!-- tested: " + name + " -->", "<!-- tested: " + name + " ("} {
		if _, r, ok := strings.Cut(doc, m); ok {
			rest = r
			break
		}
	}
	if rest == "" {
		t.Fatalf("%s has no block marked <!-- tested: %s -->", path, name)
	}
	_, rest, _ = strings.Cut(rest, "\n```") // past the marker's line
	_, block, _ := strings.Cut(rest, "\n")  // past the language
	block, _, ok := strings.Cut(block, "\n```\n")
	if !ok {
		t.Fatalf("%s: the %s block does not end", path, name)
	}
	return block
}

// Substitute makes replacements in s, each of which must apply: a
// document that drifted from what the test expects fails it.
func Substitute(t testing.TB, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("the documented config no longer contains %q:\n%s", pairs[i], s)
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s
}
