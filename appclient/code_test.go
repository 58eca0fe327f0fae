package appclient_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/wire"
)

// TestExchangeCode: the typed code is sent in canonical form and its URL
// is checked like a scanned code; a server answering with another origin's
// URL is refused, and text that is no code is never sent.
func TestExchangeCode(t *testing.T) {
	s := newFakeServer(t, func(c *appConn) {})
	var answer atomic.Value
	answer.Store("")
	var posts atomic.Int32
	s.Mux.HandleFunc("POST "+wire.PathAppCode, func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		var req wire.CodeRequest
		if json.NewDecoder(r.Body).Decode(&req) != nil || req.Code != "7K3M0X1D" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"code":"not_found","reason":"code_unknown","message":"No such code."}`))
			return
		}
		json.NewEncoder(w).Encode(wire.CodeResponse{URL: answer.Load().(string)})
	})
	d := mustInit(t, s)
	ctx := context.Background()

	answer.Store(qrURL(s))
	u, err := d.ExchangeCode(ctx, "7k3m-oxld") // O and L read as 0 and 1
	if err != nil || u != qrURL(s) {
		t.Fatalf("ExchangeCode = %q, %v", u, err)
	}
	_, err = d.ExchangeCode(ctx, "7K3M-QX9D")
	wantError(t, err, qrauth.ENOTFOUND, "code_unknown")

	answer.Store("https://evil.example/q/" + testPSK)
	_, err = d.ExchangeCode(ctx, "7K3M-0X1D")
	wantError(t, err, qrauth.EINVALID, "foreign_origin")

	n := posts.Load()
	_, err = d.ExchangeCode(ctx, "https://x/q/abc")
	wantError(t, err, qrauth.EINVALID, "invalid_code")
	if posts.Load() != n {
		t.Fatal("a malformed code was sent")
	}
	if appclient.IsUserCode("photo.png") || !appclient.IsUserCode("7k3m qx9d") {
		t.Fatal("IsUserCode")
	}
}
