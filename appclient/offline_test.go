package appclient_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/wire"
	qrcode "github.com/skip2/go-qrcode"
)

// offlineFake serves the activation call like the real server: it checks
// the device signature and answers with a fixed key (or what edit makes of
// the answer).
func offlineFake(t *testing.T, key []byte, edit func(*wire.OfflineActivation)) (*fakeServer, *appclient.Device) {
	t.Helper()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	s := newFakeServer(t, func(*appConn) {})
	d := mustInit(t, s)
	d.Now = func() time.Time { return now }
	s.Mux.HandleFunc("POST /api/app/offline/{method}", func(w http.ResponseWriter, r *http.Request) {
		if err := verifyAppRequest(d, now, r); err != nil {
			t.Errorf("activation not signed: %v", err)
			w.WriteHeader(401)
			return
		}
		a := wire.OfflineActivation{Method: offline.Method(r.PathValue("method")), DeviceID: d.ID(), UserID: "u_1",
			Origin: s.URL, Key: base64.RawURLEncoding.EncodeToString(key), KeyID: "k1", OTPLength: 6, MaxAttempts: 3, ActivatedAt: now}
		if edit != nil {
			edit(&a)
		}
		json.NewEncoder(w).Encode(a)
	})
	return s, d
}

func challenge(t *testing.T, m offline.Method, dev qrauth.DeviceID, context string) string {
	t.Helper()
	v, err := offline.NewVerificationData(bytes.NewReader(make([]byte, 6)), m, 6, dev, context)
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestActivateOffline(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, 32)
	_, d := offlineFake(t, key, nil)
	ctx := context.Background()

	dk, err := d.ActivateOffline(ctx, offline.Device, appclient.ActivateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dk.Key, key) || dk.Method != offline.Device || dk.DeviceID != d.ID() {
		t.Fatalf("%+v", dk)
	}
	// The PIN key is kept wrapped under the PIN (with the default
	// Argon2id parameters), never in clear.
	pk, err := d.ActivateOffline(ctx, offline.PIN, appclient.ActivateOptions{PIN: "135790"})
	if err != nil {
		t.Fatal(err)
	}
	if pk.Key != nil || bytes.Equal(pk.WrappedKey, key) || *pk.PIN != appclient.DefaultPINParams || len(pk.Salt) != 16 {
		t.Fatalf("%+v", pk)
	}
	keys := &appclient.OfflineKeys{}
	keys.Put(*dk)
	keys.Put(*pk)

	vd := challenge(t, offline.PIN, d.ID(), "Pay CHF 10")
	want := offline.OTP(key, vd, 6)
	got, ch, err := appclient.OfflineCode(vd, keys, "135790")
	if err != nil || got != want || ch.Context != "Pay CHF 10" || !ch.NeedsPIN {
		t.Fatalf("code %q (%v), want %q; %+v", got, err, want, ch)
	}
	// A wrong PIN is not an error: it is a wrong code.
	wrong, _, err := appclient.OfflineCode(vd, keys, "135791")
	if err != nil || wrong == want || len(wrong) != 6 {
		t.Fatalf("wrong PIN: %q %v", wrong, err)
	}
	if _, _, err := appclient.OfflineCode(vd, keys, ""); qrauth.ErrorReason(err) != "invalid_pin" {
		t.Fatalf("no PIN: %v", err)
	}
	vd = challenge(t, offline.Device, d.ID(), "")
	if got, _, err := appclient.OfflineCode(vd, keys, "ignored"); err != nil || got != offline.OTP(key, vd, 6) {
		t.Fatalf("device code %q %v", got, err)
	}

	// Refusals before anything is sent.
	for _, tc := range []struct {
		m      offline.Method
		pin    string
		reason string
	}{
		{offline.PIN, "", "invalid_pin"}, {offline.PIN, "12a4", "invalid_pin"},
		{offline.PIN, "1234567890123", "invalid_pin"}, {offline.Device, "1234", "pin_not_used"}, {"OFFLINE_X", "", "invalid_method"},
	} {
		if _, err := d.ActivateOffline(ctx, tc.m, appclient.ActivateOptions{PIN: tc.pin}); qrauth.ErrorReason(err) != tc.reason {
			t.Errorf("%s %q: %v, want %s", tc.m, tc.pin, err, tc.reason)
		}
	}
}

func TestActivateOfflineBadAnswer(t *testing.T) {
	for name, edit := range map[string]func(*wire.OfflineActivation){
		"OtherDevice": func(a *wire.OfflineActivation) { a.DeviceID = "d_AAAAAAAAAAAAAAAAAAAAAA" },
		"OtherOrigin": func(a *wire.OfflineActivation) { a.Origin = "https://evil.example" },
		"ShortKey":    func(a *wire.OfflineActivation) { a.Key = "AAAA" },
		"OtherMethod": func(a *wire.OfflineActivation) { a.Method = offline.PIN },
	} {
		t.Run(name, func(t *testing.T) {
			_, d := offlineFake(t, make([]byte, 32), edit)
			_, err := d.ActivateOffline(context.Background(), offline.Device, appclient.ActivateOptions{})
			wantError(t, err, qrauth.EINTERNAL, "bad_response")
		})
	}
}

func TestStartOfflineRefused(t *testing.T) {
	dev := qrauth.DeviceIDFromKey(make([]byte, 32))
	keys := &appclient.OfflineKeys{Keys: []appclient.OfflineKey{{DeviceID: dev, Method: offline.Device, Key: make([]byte, 32)}}}
	other := qrauth.DeviceIDFromKey(bytes.Repeat([]byte{1}, 32))
	if offline.DeviceHint(other) == offline.DeviceHint(dev) {
		t.Fatal("pick another device: the hints collide")
	}
	for _, tc := range []struct{ name, text, reason string }{
		{"AnotherPhone", challenge(t, offline.Device, other, "x"), "no_offline_key"},
		{"MethodNotOn", challenge(t, offline.PIN, dev, "x"), "no_offline_key"},
		{"LoginCode", "https://login.example.com/q/AAAAAAAAAAAAAAAAAAAAAA", "not_offline_code"},
		{"Escape", "1D6AAAAAAAA" + offline.DeviceHint(dev) + "\x1b[2J", "context_control_character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := appclient.StartOffline(tc.text, keys); qrauth.ErrorReason(err) != tc.reason {
				t.Fatalf("%v, want %s", err, tc.reason)
			}
		})
	}
}

func TestOfflineKeysFile(t *testing.T) {
	dir := t.TempDir()
	path := appclient.OfflineKeysPath(filepath.Join(dir, "device.json"))
	if path != filepath.Join(dir, "device.offline.json") {
		t.Fatal(path)
	}
	empty, err := appclient.LoadOfflineKeys(path)
	if err != nil || len(empty.Keys) != 0 {
		t.Fatalf("missing file: %+v %v", empty, err)
	}
	dev := qrauth.DeviceIDFromKey(make([]byte, 32))
	keys := &appclient.OfflineKeys{}
	keys.Put(appclient.OfflineKey{DeviceID: dev, Method: offline.Device, Key: bytes.Repeat([]byte{1}, 32)})
	keys.Put(appclient.OfflineKey{DeviceID: dev, Method: offline.Device, Key: bytes.Repeat([]byte{2}, 32)}) // replaces
	if err := keys.Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	back, err := appclient.LoadOfflineKeys(path)
	if err != nil || len(back.Keys) != 1 || back.Keys[0].Key[0] != 2 {
		t.Fatalf("%+v %v", back, err)
	}
	os.Chmod(path, 0o644)
	_, err = appclient.LoadOfflineKeys(path)
	wantError(t, err, qrauth.EUNAUTHORIZED, "offline_keys_insecure")
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte(`{"version":1,"keys":[{"device_id":"`+string(dev)+`","method":"OFFLINE_PIN","key":"AAAA"}]}`), 0o600)
	_, err = appclient.LoadOfflineKeys(path)
	wantError(t, err, qrauth.EINVALID, "offline_keys_corrupt")
	os.WriteFile(path, []byte(`{"version":2,"keys":[]}`), 0o600)
	_, err = appclient.LoadOfflineKeys(path)
	wantError(t, err, qrauth.EINVALID, "offline_keys_version")
	if !keys.Remove(dev, offline.Device) || keys.Remove(dev, offline.Device) {
		t.Fatal("Remove")
	}
}

func TestParseTransactionURL(t *testing.T) {
	const origin = "https://login.example.com"
	tok := strings.Repeat("A", 22)
	for _, tc := range []struct{ s, reason string }{
		{origin + wire.Prefix(wire.PathTransactionScan) + tok, ""},
		{"https://LOGIN.example.com:443/t/" + tok, ""},
		{"https://login.example.net/t/" + tok, "foreign_origin"},
		{origin + wire.Prefix(wire.PathScan) + tok, "not_a_transaction_code"},
		{origin + wire.Prefix(wire.PathTransactionScan) + tok + "?x=1", "not_a_transaction_code"},
		{origin + wire.Path(wire.PathTransactionScan, "short"), "not_a_transaction_code"},
		{"1D6AAAAAAAAAAA", "not_a_transaction_code"},
	} {
		got, err := appclient.ParseTransactionURL(origin, tc.s)
		if qrauth.ErrorReason(err) != tc.reason || (err == nil && got != tok) {
			t.Errorf("%q: %q %v, want %s", tc.s, got, err, tc.reason)
		}
	}
}

// TestDecodeQRImagePure: the clean, computer-drawn codes that ZXing's detector
// misreads (these texts, drawn at 6 pixels a module, are such codes) are
// read as pure barcodes.
func TestDecodeQRImagePure(t *testing.T) {
	for _, n := range []int{132, 661, 1192, 1} {
		text := fmt.Sprintf("1P9%08dxy", n) + "Sign in to 127.0.0.1:41234"
		q, err := qrcode.New(text, qrcode.Medium)
		if err != nil {
			t.Fatal(err)
		}
		png, _ := q.PNG(-6)
		got, err := appclient.DecodeQRImage(bytes.NewReader(png))
		if err != nil || got != text {
			t.Fatalf("%q: %q %v", text, got, err)
		}
	}
	if _, err := appclient.DecodeQRImage(strings.NewReader("not an image")); qrauth.ErrorReason(err) != "unreadable_image" {
		t.Fatal(err)
	}
}

// The phone answers an offline challenge with no network: the key it
// keeps and the scanned text are all it needs.
func ExampleStartOffline() {
	dev := qrauth.DeviceIDFromKey(make([]byte, 32))
	keys := &appclient.OfflineKeys{Keys: []appclient.OfflineKey{
		{DeviceID: dev, Method: offline.Device, Key: bytes.Repeat([]byte{0x42}, 32)},
	}}
	scanned := "1D6AbCdEfGh" + offline.DeviceHint(dev) + "Pay CHF 120.00 to Muster AG"

	ch, err := appclient.StartOffline(scanned, keys)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Details:", ch.Context)
	code, _ := ch.Code("") // OFFLINE_DEVICE needs no PIN
	fmt.Println("Code:", code)
	// Output:
	// Details: Pay CHF 120.00 to Muster AG
	// Code: 744459
}
