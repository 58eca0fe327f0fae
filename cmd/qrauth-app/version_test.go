package main

import (
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	r := runApp(t, "", "version")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "qrauth-app github.com/qrauth/qrauth ") || !strings.Contains(r.stdout, " revision ") || r.stderr != "" {
		t.Errorf("version: %+v", r)
	}
	if r := runApp(t, "", "version", "-h"); r.code != exitOK || !strings.Contains(r.stdout, "Usage: qrauth-app version") {
		t.Errorf("version -h: %+v", r)
	}
	if r := runApp(t, "", "version", "now"); r.code != exitUsage || !strings.Contains(r.stderr, "takes no arguments") {
		t.Errorf("version now: %+v", r)
	}
	if r := runApp(t, "", "help"); !strings.Contains(r.stdout, "qrauth-app version") {
		t.Errorf("help does not list version:\n%s", r.stdout)
	}
}
