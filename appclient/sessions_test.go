package appclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/wire"
)

// verifyAppRequest checks the device signature of r as the server would.
func verifyAppRequest(d *appclient.Device, now time.Time, r *http.Request) error {
	ts, err := strconv.ParseInt(r.Header.Get(wire.HeaderTime), 10, 64)
	if err != nil || ts != now.Unix() {
		return fmt.Errorf("%s = %q, want %d", wire.HeaderTime, r.Header.Get(wire.HeaderTime), now.Unix())
	}
	req := wire.AppRequest{
		Method: r.Method, Path: r.URL.Path, Time: ts,
		Nonce:    r.Header.Get(wire.HeaderNonce),
		DeviceID: qrauth.DeviceID(r.Header.Get(wire.HeaderDevice)),
	}
	if req.DeviceID != d.ID() {
		return fmt.Errorf("device header = %s, want %s", req.DeviceID, d.ID())
	}
	return req.Verify(d.PublicKey(), r.Header.Get(wire.HeaderSignature))
}

func TestSessions(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	s := newFakeServer(t, func(*appConn) {})
	d := mustInit(t, s)
	d.Now = func() time.Time { return now }
	nonces := map[string]bool{}
	deny := func(w http.ResponseWriter, status int, e *qrauth.Error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"code": e.Code, "reason": e.Reason, "message": e.Message})
	}
	s.Mux.HandleFunc("GET /api/app/sessions", func(w http.ResponseWriter, r *http.Request) {
		if err := verifyAppRequest(d, now, r); err != nil {
			deny(w, 401, qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_signature", "The request signature is not valid."))
			return
		}
		if n := r.Header.Get(wire.HeaderNonce); nonces[n] {
			t.Errorf("nonce %s reused", n)
		} else {
			nonces[n] = true
		}
		w.Write([]byte(`{"sessions":[{"id":"s_1","ip":"203.0.113.7","browser":"Firefox 140","os":"Linux",
			"user_agent":"Mozilla/5.0","created_at":"2025-06-01T10:00:00Z","last_seen_at":"2025-06-01T11:00:00Z",
			"expires_at":"2025-06-08T10:00:00Z"}]}`))
	})
	s.Mux.HandleFunc("DELETE /api/app/sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := verifyAppRequest(d, now, r); err != nil {
			deny(w, 401, qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_signature", "The request signature is not valid."))
			return
		}
		switch r.PathValue("id") {
		case "s_1":
			w.WriteHeader(http.StatusNoContent)
		case "s_proxy":
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>bad gateway</html>"))
		default:
			deny(w, 404, qrauth.Errorf(qrauth.ENOTFOUND, "session_not_found", "There is no such session."))
		}
	})

	t.Run("List", func(t *testing.T) {
		for range 2 { // a fresh nonce each time
			list, err := d.Sessions(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].ID != "s_1" || list[0].Browser != "Firefox 140" ||
				!list[0].LastSeenAt.Equal(time.Date(2025, 6, 1, 11, 0, 0, 0, time.UTC)) {
				t.Fatalf("sessions = %+v", list)
			}
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		if err := d.RevokeSession(context.Background(), "s_1"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ErrRevokeUnknown", func(t *testing.T) {
		err := d.RevokeSession(context.Background(), "s_2")
		wantError(t, err, qrauth.ENOTFOUND, "session_not_found")
		if qrauth.ErrorMessage(err) != "There is no such session." {
			t.Fatalf("message = %q", qrauth.ErrorMessage(err))
		}
	})

	t.Run("ErrNotJSON", func(t *testing.T) {
		err := d.RevokeSession(context.Background(), "s_proxy")
		wantError(t, err, qrauth.EINTERNAL, "http_502")
	})

	t.Run("ErrInvalidID", func(t *testing.T) {
		err := d.RevokeSession(context.Background(), "../devices")
		wantError(t, err, qrauth.EINVALID, "invalid_session_id")
	})

	t.Run("ErrWrongKey", func(t *testing.T) {
		other := *d
		other.PrivateKey = testDevice().PrivateKey
		_, err := other.Sessions(context.Background())
		wantError(t, err, qrauth.EUNAUTHORIZED, "bad_signature")
	})
}
