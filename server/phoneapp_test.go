package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth/wire"
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

// TestAppDevicesAPI: GET /api/app/devices lists the phones of the signing
// device's account and nothing else; it needs a valid device signature like
// every app API call.
func TestAppDevicesAPI(t *testing.T) {
	srv, p := registered(t, nil)
	get := func(ph *phone, nonce string, at time.Time) (int, map[string]any) {
		t.Helper()
		r := wire.AppRequest{Method: "GET", Path: "/api/app/devices", Time: at.Unix(), Nonce: nonce, DeviceID: ph.id}
		req, _ := http.NewRequest("GET", srv.URL+r.Path, nil)
		req.Header.Set(wire.HeaderDevice, string(ph.id))
		req.Header.Set(wire.HeaderTime, strconv.FormatInt(r.Time, 10))
		req.Header.Set(wire.HeaderNonce, nonce)
		req.Header.Set(wire.HeaderSignature, r.Sign(ph.priv))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, body
	}
	other := newPhone(t, srv, "+1 202 555 0100")
	signUp(t, srv, other)

	now := time.Now()
	st, body := get(p, "ZGV2aWNlcy1ub25jZS0xMjM", now)
	devs, _ := body["devices"].([]any)
	if st != 200 || len(devs) != 1 || devs[0].(map[string]any)["id"] != string(p.id) {
		t.Fatalf("%d %v", st, body)
	}
	if st, body := get(p, "ZGV2aWNlcy1ub25jZS0xMjM", now); st != 401 || body["reason"] != "replayed" {
		t.Fatalf("replay: %d %v", st, body)
	}
	if st, body := get(p, "ZGV2aWNlcy1ub25jZS00NTY", now.Add(-time.Hour)); st != 401 || body["reason"] != "clock_skew" {
		t.Fatalf("old: %d %v", st, body)
	}
	stranger := newPhone(t, srv, "+44 20 7946 0000")
	if st, body := get(stranger, "ZGV2aWNlcy1ub25jZS03ODk", now); st != 401 || body["reason"] != "device_unknown" {
		t.Fatalf("unknown device: %d %v", st, body)
	}
	st, body = get(other, "ZGV2aWNlcy1ub25jZS1hYmM", now)
	devs, _ = body["devices"].([]any)
	if st != 200 || len(devs) != 1 || devs[0].(map[string]any)["id"] != string(other.id) {
		t.Fatalf("other account: %d %v", st, body)
	}
}
