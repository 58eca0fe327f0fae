package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"
)

func phoneAppGet(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// TestPhoneAppRoutes checks what makes /app installable and lets it decode
// QR codes: the shell with a policy that allows compiling WebAssembly (and
// only there), the worker allowed to control /app, the manifest with its
// media type, display standalone and 192 and 512 px PNG icons, and the
// WebAssembly served by us with its media type.
func TestPhoneAppRoutes(t *testing.T) {
	srv := MustOpenServer(t, nil)

	res, body := phoneAppGet(t, srv.URL+"/app")
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != 200 || !strings.Contains(csp, "script-src 'self' 'wasm-unsafe-eval';") {
		t.Fatalf("/app: %d, CSP %q", res.StatusCode, csp)
	}
	if strings.Contains(csp, " 'unsafe-eval'") || strings.Contains(csp, "'unsafe-inline'") || !strings.Contains(csp, "connect-src 'self';") {
		t.Fatalf("/app CSP too loose: %q", csp)
	}
	if !bytes.Contains(body, []byte(`<link rel="manifest" href="/app/manifest.webmanifest">`)) {
		t.Fatal("/app does not link its manifest")
	}
	if res, _ := phoneAppGet(t, srv.URL+"/"); strings.Contains(res.Header.Get("Content-Security-Policy"), "wasm") {
		t.Fatal("the login page got the app's policy")
	}

	res, _ = phoneAppGet(t, srv.URL+"/app/sw.js")
	if res.StatusCode != 200 || res.Header.Get("Service-Worker-Allowed") != "/app" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("/app/sw.js: %d %v", res.StatusCode, res.Header)
	}

	res, body = phoneAppGet(t, srv.URL+"/app/manifest.webmanifest")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/manifest+json" {
		t.Fatalf("manifest: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var man struct {
		StartURL string `json:"start_url"`
		Scope    string `json:"scope"`
		Display  string `json:"display"`
		Icons    []struct {
			Src, Sizes, Type string
		} `json:"icons"`
	}
	if err := json.Unmarshal(body, &man); err != nil {
		t.Fatal(err)
	}
	if man.StartURL != "/app" || man.Scope != "/app" || man.Display != "standalone" {
		t.Fatalf("manifest %+v", man)
	}
	sizes := map[string]bool{}
	for _, ic := range man.Icons {
		res, b := phoneAppGet(t, srv.URL+ic.Src)
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if res.StatusCode != 200 || err != nil || ic.Type != "image/png" {
			t.Fatalf("icon %s: %d %v", ic.Src, res.StatusCode, err)
		}
		if got := fmt.Sprintf("%dx%d", cfg.Width, cfg.Height); got != ic.Sizes {
			t.Fatalf("icon %s is %s, manifest says %s", ic.Src, got, ic.Sizes)
		}
		sizes[ic.Sizes] = true
	}
	if !sizes["192x192"] || !sizes["512x512"] {
		t.Fatalf("icons %v", sizes)
	}

	res, body = phoneAppGet(t, srv.URL+"/static/vendor/zxing-wasm/zxing_reader.wasm")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/wasm" || !bytes.HasPrefix(body, []byte("\x00asm")) {
		t.Fatalf("wasm: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
}
