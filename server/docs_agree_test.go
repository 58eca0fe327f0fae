package server_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/server/oathflow"
	"github.com/qrauth/qrauth/wire"
)

// signedCall makes a device-signed app API call at the server's clock and
// returns the status and the decoded body.
func (e *offlineEnv) signedCall(method, path string) (int, map[string]any) {
	e.t.Helper()
	nonce, _ := qrauth.RandomToken(rand.Reader, 16)
	r := wire.AppRequest{Method: method, Path: path, Time: e.clock.Now().Unix(), Nonce: nonce, DeviceID: e.p.id}
	req, _ := http.NewRequest(method, e.srv.URL+path, nil)
	req.Header.Set(wire.HeaderDevice, string(e.p.id))
	req.Header.Set(wire.HeaderTime, strconv.FormatInt(r.Time, 10))
	req.Header.Set(wire.HeaderNonce, nonce)
	req.Header.Set(wire.HeaderSignature, r.Sign(e.p.priv))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(data, &m)
	return resp.StatusCode, m
}

// TestOfflineMethodSpellings: one set of method names everywhere a client
// gives one: the canonical OFFLINE_DEVICE/OFFLINE_PIN and the aliases
// device/pin and offline-device/offline-pin, in the app API's path as in
// the relying site's body. Answers always carry the canonical name.
func TestOfflineMethodSpellings(t *testing.T) {
	e := newOfflineEnv(t, nil)
	for _, spelling := range []string{"offline-device", "OFFLINE_DEVICE", "device", "Offline_Device"} {
		st, body := e.signedCall("POST", wire.Prefix(wire.PathAppOfflineMethod)+spelling)
		if st != 200 || body["method"] != string(offline.Device) {
			t.Fatalf("activate %s: %d %v", spelling, st, body)
		}
	}
	st, body := e.signedCall("POST", wire.Path(wire.PathAppOfflineMethod, "OFFLINE_FACE"))
	wantReason(t, st, body, 400, "invalid_method")
	for _, spelling := range []string{"offline-device", "device", "OFFLINE_DEVICE"} {
		st, body := e.api("POST", wire.PathOfflineSessions, map[string]any{"user_id": e.uid, "method": spelling, "context": "x"})
		if st != 201 || body["method"] != string(offline.Device) {
			t.Fatalf("begin %s: %d %v", spelling, st, body)
		}
	}
	if st, _ := e.signedCall("DELETE", wire.Path(wire.PathAppOfflineMethod, "pin")); st != 404 {
		t.Fatalf("deactivate an inactive method by alias: %d", st)
	}
	if st, _ := e.signedCall("DELETE", wire.Path(wire.PathAppOfflineMethod, "offline-device")); st != 204 {
		t.Fatalf("deactivate by alias: %d", st)
	}
}

// TestNeverUsedDatesOmitted: a method never used has no last_used_at and
// an unlocked one no locked_at, rather than 0001-01-01T00:00:00Z.
func TestNeverUsedDatesOmitted(t *testing.T) {
	e := newOfflineEnv(t, nil)
	e.activate(offline.Device, "")
	_, app := e.signedCall("GET", wire.PathAppOffline)
	_, rs := e.api("GET", wire.Path(wire.PathOfflineUserMethods, string(e.uid)), nil)
	for name, body := range map[string]map[string]any{"app": app, "relying site": rs} {
		m := body["methods"].([]any)[0].(map[string]any)
		if _, ok := m["last_used_at"]; ok {
			t.Errorf("%s: last_used_at of a method never used: %v", name, m)
		}
		if _, ok := m["locked_at"]; ok {
			t.Errorf("%s: locked_at of an unlocked method: %v", name, m)
		}
		if m["activated_at"] == nil {
			t.Errorf("%s: no activated_at: %v", name, m)
		}
	}
	for _, body := range []map[string]any{app, rs} {
		if strings.Contains(mustJSON(t, body), "0001-01-01") {
			t.Errorf("zero time in %v", body)
		}
	}
	sess := e.begin(offline.Device, "x")
	if _, v := e.verify(sess, e.code(sess, "")); v["result"] != "success" {
		t.Fatal(v)
	}
	_, app = e.signedCall("GET", wire.PathAppOffline)
	if m := app["methods"].([]any)[0].(map[string]any); m["last_used_at"] == nil {
		t.Errorf("no last_used_at after a use: %v", m)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestApprovalPageFields: the approval page's view carries the fields of
// its kind, false and 0 included, and not the other kind's.
func TestApprovalPageFields(t *testing.T) {
	e := newOfflineEnv(t, nil)
	e.activate(offline.Device, "")
	view := func(pageURL string) map[string]any {
		t.Helper()
		token := pageURL[strings.Index(pageURL, "#")+1:]
		st, body := offlineCall(t, e.srv.URL, "POST", wire.PathApproveView, map[string]any{"token": token}, "")
		if st != 200 {
			t.Fatalf("%d %v", st, body)
		}
		return body
	}
	off := view(e.begin(offline.Device, "Pay CHF 1")["page_url"].(string))
	if _, ok := off["scanned"]; ok || off["otp_length"] != float64(6) || off["remaining_attempts"] != float64(3) {
		t.Errorf("offline view: %v", off)
	}
	_, a := e.api("POST", wire.PathApprovals, map[string]any{"user_id": e.uid, "text": "Pay CHF 2"})
	on := view(a["page_url"].(string))
	if on["scanned"] != false {
		t.Errorf("online view without scanned=false: %v", on)
	}
	if _, ok := on["otp_length"]; ok {
		t.Errorf("online view with otp_length: %v", on)
	}
	if _, ok := on["remaining_attempts"]; ok {
		t.Errorf("online view with remaining_attempts: %v", on)
	}
}

// TestOfflineSignInOrderBeforeUse: before any use the method activated last
// is offered first; after a use the one used last is.
func TestOfflineSignInOrderBeforeUse(t *testing.T) {
	e := newOfflineEnv(t, nil)
	e.activate(offline.Device, "")
	e.clock.advance(time.Minute)
	e.activate(offline.PIN, "1234")
	choose := func(choice int) map[string]any {
		t.Helper()
		st, body := e.b.do("POST", wire.PathOfflineSignIn, `{"identifier":"ada@example.com","choice":`+strconv.Itoa(choice)+`}`)
		if st != 200 {
			t.Fatalf("%d %v", st, body)
		}
		return body
	}
	if m := choose(0)["method"]; m != string(offline.PIN) {
		t.Fatalf("first offer before any use: %v, want the method activated last", m)
	}
	if m := choose(1)["method"]; m != string(offline.Device) {
		t.Fatalf("second offer: %v", m)
	}
	e.clock.advance(time.Minute)
	sess := e.begin(offline.Device, "x")
	if _, v := e.verify(sess, e.code(sess, "")); v["result"] != "success" {
		t.Fatal(v)
	}
	if m := choose(0)["method"]; m != string(offline.Device) {
		t.Fatalf("first offer after a use: %v, want the method used last", m)
	}
}

// TestOATHDatesOmitted: an authenticator that was never confirmed or used
// has no activated_at or last_used_at in its view.
func TestOATHDatesOmitted(t *testing.T) {
	srv := MustOpenServerOATH(t, func(c *testConfig) { c.MasterKey = bytes.Repeat([]byte{7}, 32) },
		func(*oathflow.Config) {})
	p := newPhone(t, srv, "+41 79 123 45 67")
	signUp(t, srv, p)
	b := signIn(t, srv, p)
	if st, body := b.do("POST", wire.PathOATHEnrol, ""); st != 200 {
		t.Fatalf("enrol: %d %v", st, body)
	}
	st, body := b.do("GET", wire.PathOATH, "")
	acct, _ := body["account"].(map[string]any)
	if st != 200 || acct == nil || acct["pending"] != true {
		t.Fatalf("%d %v", st, body)
	}
	for _, k := range []string{"activated_at", "last_used_at"} {
		if _, ok := acct[k]; ok {
			t.Errorf("%s present before it happened: %v", k, acct)
		}
	}
	if strings.Contains(mustJSON(t, body), "0001-01-01") {
		t.Errorf("zero time in %v", body)
	}
}
