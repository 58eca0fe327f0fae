package main

import (
	"net/http"
	"testing"

	"github.com/qrauth/qrauth/wire"
)

// issuedBind loads the login page of origin and returns the bind cookie
// it issued: the server accepts only bind values it issued itself.
func issuedBind(tb testing.TB, origin string) string {
	tb.Helper()
	return issuedBindVia(tb, http.DefaultClient, origin)
}

// issuedBindVia is issuedBind through client (one that trusts a test CA).
func issuedBindVia(tb testing.TB, client *http.Client, origin string) string {
	tb.Helper()
	resp, err := client.Get(origin + wire.PathLogin)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "qrauth_bind" && c.Value != "" {
			return c.Value
		}
	}
	tb.Fatalf("GET %s/ set no bind cookie", origin)
	return ""
}
