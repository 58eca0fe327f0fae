package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qrauth/qrauth/recovery"
	"github.com/qrauth/qrauth/wire"
)

// recoverServer is a fake server with discovery and POST /api/app/recover,
// which checks the request's signature as the real one does and knows one
// code.
func recoverServer(t *testing.T) *httptest.Server {
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/qrauth", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(wire.Discovery{ProtocolVersion: wire.ProtocolVersion, Origin: srv.URL,
			PhoneSalt: base64.RawURLEncoding.EncodeToString(testSalt), QRPrefix: srv.URL + wire.Prefix(wire.PathScan),
			AppSocket: "ws" + strings.TrimPrefix(srv.URL, "http") + wire.PathAppSocket, SessionsURL: srv.URL + wire.PathAppSessions})
	})
	mux.HandleFunc("POST "+wire.PathAppRecover, func(w http.ResponseWriter, r *http.Request) {
		var req wire.RecoverRequest
		json.NewDecoder(r.Body).Decode(&req)
		code, err := recovery.Normalize(req.Code)
		key, _ := base64.RawURLEncoding.DecodeString(req.PublicKey)
		signed := wire.Recover{Origin: srv.URL, Code: code, DeviceID: req.DeviceID, PhoneIDHash: req.PhoneIDHash, DeviceName: req.DeviceName}
		if err != nil || signed.Verify(key, req.Signature) != nil {
			w.WriteHeader(401)
			w.Write([]byte(`{"code":"unauthorized","reason":"bad_signature","message":"The new phone's signature is not valid."}`))
			return
		}
		if code != "ABCDEFGHJKMNPQRS" {
			w.WriteHeader(401)
			w.Write([]byte(`{"code":"unauthorized","reason":"bad_recovery_code","message":"That recovery code is not valid, or it was already used."}`))
			return
		}
		json.NewEncoder(w).Encode(wire.RecoverResponse{UserID: "u_ada", Account: wire.AccountInfo{Name: "Ada\x1b[2J Lovelace"},
			Device: wire.DeviceInfo{ID: req.DeviceID, Name: req.DeviceName}, Kind: recovery.KindRecovery, SessionsEnded: 2, Remaining: 9})
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestRunRecover(t *testing.T) {
	srv := recoverServer(t)
	state := filepath.Join(t.TempDir(), "device.json")
	if r := runApp(t, "", "init", "--server", srv.URL, "--phone", "+41 79 123 45 67", "--name", "Pixel 9", "--state", state); r.code != exitOK {
		t.Fatalf("init = %+v", r)
	}
	if r := runApp(t, "", "recover", "--state", state); r.code != exitUsage {
		t.Fatalf("recover without a code = %+v", r)
	}
	if r := runApp(t, "", "recover", "--state", state, "not a code"); r.code != exitError || !strings.Contains(r.stderr, "invalid_recovery_code") {
		t.Fatalf("recover with a malformed code = %+v", r)
	}
	r := runApp(t, "", "recover", "--state", state, "0000-0000-0000-0000")
	if r.code != exitError || r.stderr != "qrauth-app: That recovery code is not valid, or it was already used. [bad_recovery_code]\n" {
		t.Fatalf("recover with a wrong code = %+v", r)
	}
	r = runApp(t, "", "recover", "--state", state, "abcd efgh jkmn pqrs")
	if r.code != exitOK || !strings.Contains(r.stdout, `linked to the account of Ada?[2J Lovelace as "Pixel 9"`) ||
		!strings.Contains(r.stdout, "2 browser sessions were signed out") || !strings.Contains(r.stdout, "9 recovery codes are left") {
		t.Fatalf("recover = %+v", r)
	}
	// A helpdesk's QR code URL works as well, on the device's own origin only.
	if r := runApp(t, "", "recover", "--state", state, wire.RecoverURL(srv.URL, "ABCD-EFGH-JKMN-PQRS")); r.code != exitOK {
		t.Fatalf("recover with the QR URL = %+v", r)
	}
	if r := runApp(t, "", "recover", "--state", state, wire.RecoverURL("https://evil.example", "ABCD-EFGH-JKMN-PQRS")); r.code != exitError ||
		!strings.Contains(r.stderr, "foreign_origin") {
		t.Fatalf("recover with another origin's QR URL = %+v", r)
	}
}
