package main

import (
	"net/http"
	"testing"
)

// issuedBind loads the login page of origin and returns the bind cookie
// it issued: the server accepts only bind values it issued itself.
func issuedBind(tb testing.TB, origin string) string {
	tb.Helper()
	resp, err := http.Get(origin + "/")
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
