package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/qrauth/qrauth/wire"
)

// TestHealthcheck runs `qrauthd healthcheck` against a small server that
// answers as told: only a 2xx answer from the URL asked is healthy.
func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte("ok\n"))
		case "/down":
			http.Error(w, "stopping", http.StatusServiceUnavailable)
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusFound)
		case "/hang":
			<-r.Context().Done() // until the client gives up
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens there any more

	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		errText string
	}{
		{"Healthy", []string{"-url", srv.URL + "/healthz"}, 0, ""},
		{"Unavailable", []string{"-url", srv.URL + "/down"}, 1, "503"},
		{"NotFound", []string{"-url", srv.URL + "/nope"}, 1, "404"},
		{"RedirectNotFollowed", []string{"-url", srv.URL + "/moved"}, 1, "302"},
		{"Refused", []string{"-url", closed.URL + "/healthz"}, 1, "refused"},
		{"Timeout", []string{"-url", srv.URL + "/hang", "-timeout", "100ms"}, 1, "deadline"},
		{"NotHTTP", []string{"-url", "ftp://127.0.0.1/healthz"}, 2, "not an http(s) URL"},
		{"ExtraArgument", []string{"now"}, 2, "unexpected argument"},
		{"BadFlag", []string{"-nope"}, 2, "-nope"},
		{"ZeroTimeout", []string{"-timeout", "0s"}, 2, "positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Not runCLI: its context is already done, and the check
			// follows its context.
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), append([]string{"healthcheck"}, tc.args...), &stdout, &stderr)
			errOut := stderr.String()
			if code != tc.code || !strings.Contains(errOut, tc.errText) || (tc.code == 0) != (errOut == "") {
				t.Errorf("exit %d, stderr %q; want exit %d with %q", code, errOut, tc.code, tc.errText)
			}
		})
	}
}

// `qrauthd help healthcheck` and `qrauthd healthcheck -h` print the usage.
func TestHealthcheckHelp(t *testing.T) {
	for _, args := range [][]string{{"healthcheck", "-h"}, {"help", "healthcheck"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "Usage: qrauthd healthcheck") || !strings.Contains(out, defaultHealthURL) || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// Against the real server: healthy while it runs, not once it has stopped.
func TestHealthcheckMain(t *testing.T) {
	m := MustRunMain(t)
	url := m.Server.Origin() + wire.PathHealth
	check := func() (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), []string{"healthcheck", "-url", url}, &stdout, &stderr)
		return code, stderr.String()
	}
	if code, errOut := check(); code != 0 {
		t.Fatalf("running server: exit %d, %s", code, errOut)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if code, errOut := check(); code != 1 {
		t.Errorf("stopped server: exit %d, %s", code, errOut)
	}
}
