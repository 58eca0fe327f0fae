package server_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
)

// pskOf is the PSK of a qr message.
func pskOf(qr *qrauth.ServerMessage) string { return qr.URL[strings.LastIndex(qr.URL, "/")+1:] }

// sendJoin dials and sends f, returning the server's first answer.
func (p *phone) sendJoin(f qrauth.AppFrame) *qrauth.ServerMessage {
	p.tb.Helper()
	p.dial()
	p.send(f)
	return readMsg(p.tb, p.ws)
}

// TestJoinProvesKey: a party that knows a registered phone's device id,
// public key and phone number but not its private key gets no challenge,
// so never the account's name, and the same refusal as for a device that
// is not registered at all.
func TestJoinProvesKey(t *testing.T) {
	srv, p := registered(t, nil)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	stranger := newPhone(t, srv, "+44 7700 900123") // not registered
	cases := []struct {
		name   string
		who    *phone
		edit   func(j *qrauth.Join, f *qrauth.AppFrame, who *phone) string // returns the signature
		reason string
		close  int
	}{
		{"RegisteredWrongKey", p, func(j *qrauth.Join, f *qrauth.AppFrame, _ *phone) string { return j.Sign(otherPriv) }, "bad_signature", 4401},
		{"UnknownWrongKey", stranger, func(j *qrauth.Join, f *qrauth.AppFrame, _ *phone) string { return j.Sign(otherPriv) }, "bad_signature", 4401},
		{"UnknownWithRegisteredPhone", &phone{priv: stranger.priv, pub: stranger.pub, id: stranger.id, phone: p.phone},
			func(j *qrauth.Join, f *qrauth.AppFrame, _ *phone) string { return j.Sign(otherPriv) }, "bad_signature", 4401},
		{"OtherOrigin", p, func(j *qrauth.Join, f *qrauth.AppFrame, w *phone) string {
			j.Origin = "https://evil.example"
			return j.Sign(w.priv)
		}, "bad_signature", 4401},
		{"OtherPSK", p, func(j *qrauth.Join, f *qrauth.AppFrame, w *phone) string {
			j.PSK = "AAAAAAAAAAAAAAAAAAAAAA"
			return j.Sign(w.priv)
		}, "bad_signature", 4401},
		{"OtherPhone", p, func(j *qrauth.Join, f *qrauth.AppFrame, w *phone) string {
			j.PhoneIDHash = strings.Repeat("b", 64)
			return j.Sign(w.priv)
		}, "bad_signature", 4401},
		{"Unsigned", p, func(j *qrauth.Join, f *qrauth.AppFrame, _ *phone) string {
			f.PublicKey = ""
			return ""
		}, "join_not_signed", 4400},
	}
	var refusal *qrauth.ServerMessage
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, srv.DB)
			q := *tc.who
			q.tb, q.srv = t, srv
			b := newBrowser(t, srv)
			qr := b.open()
			f := q.joinFrame(pskOf(qr))
			j := qrauth.Join{Origin: srv.URL, PSK: f.PSK, DeviceID: f.DeviceID, PhoneIDHash: f.PhoneIDHash}
			f.Signature = tc.edit(&j, &f, &q)
			m := q.sendJoin(f)
			if m.Account != nil || m.Type == qrauth.MsgChallenge {
				t.Fatalf("the app learnt %+v", m)
			}
			// Whether the device or the phone is registered, the refusal
			// reads the same.
			if tc.reason == "bad_signature" {
				if refusal == nil {
					refusal = m
				} else if *m != *refusal {
					t.Fatalf("refusal %+v differs from %+v", m, refusal)
				}
			}
			wantErrorMsg(t, m, q.ws, tc.reason, tc.close)
			if tc.reason == "bad_signature" {
				// The scanned PSK is spent; the browser gets a new code.
				if m := b.next(); m.Type != qrauth.MsgQR || m.URL == qr.URL {
					t.Fatalf("browser: %+v, want a new qr", m)
				}
			}
			if after := snapshot(t, srv.DB); after != before {
				t.Fatal("store changed")
			}
		})
	}
	// The holder of the key still signs in.
	signIn(t, srv, p)
}

// weakKeys are small-order and non-canonical encodings (the full table is
// in the qrauth package's tests).
var weakKeys = []string{
	"0100000000000000000000000000000000000000000000000000000000000000", // identity
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // identity, y = p + 1
}

// weakJoin is a join with a weak key and the signature anyone can make
// for it (R = identity, S = 0).
func weakJoin(t *testing.T, srv *testServer, psk, keyHex, phoneHash string) qrauth.AppFrame {
	pub, err := hex.DecodeString(keyHex)
	if err != nil {
		t.Fatal(err)
	}
	sig := append(append([]byte{1}, make([]byte, 31)...), make([]byte, 32)...)
	return qrauth.AppFrame{Type: qrauth.MsgJoin, PSK: psk, DeviceID: qrauth.DeviceIDFromKey(pub), PhoneIDHash: phoneHash,
		PublicKey: base64.RawURLEncoding.EncodeToString(pub), Signature: base64.RawURLEncoding.EncodeToString(sig)}
}

// TestWeakPublicKeyRefused: a small-order or non-canonical key is refused
// at sign-up and at link with weak_public_key, and nothing is stored.
func TestWeakPublicKeyRefused(t *testing.T) {
	srv, p := registered(t, nil)
	browser := signIn(t, srv, p)
	for _, k := range weakKeys {
		t.Run("SignUp/"+k[:8], func(t *testing.T) {
			before := snapshot(t, srv.DB)
			q := newPhone(t, srv, "+1 202 555 0100")
			b := newBrowser(t, srv)
			wantErrorMsg(t, q.sendJoin(weakJoin(t, srv, pskOf(b.open()), k, q.phone)), q.ws, "weak_public_key", 4400)
			if after := snapshot(t, srv.DB); after != before {
				t.Fatal("store changed")
			}
		})
		t.Run("Link/"+k[:8], func(t *testing.T) {
			before := snapshot(t, srv.DB)
			ws, resp, err := browser.dial("?mode=link")
			if err != nil {
				t.Fatalf("%v %v", err, resp)
			}
			defer ws.Close()
			qr := readMsg(t, ws)
			q := newPhone(t, srv, "+41 78 000 00 00")
			wantErrorMsg(t, q.sendJoin(weakJoin(t, srv, pskOf(qr), k, q.phone)), q.ws, "weak_public_key", 4400)
			if after := snapshot(t, srv.DB); after != before {
				t.Fatal("store changed")
			}
		})
	}
	t.Run("InDecision", func(t *testing.T) {
		q := newPhone(t, srv, "+1 202 555 0101")
		b := newBrowser(t, srv)
		if ch := q.join(b.open()); ch.Type != qrauth.MsgChallenge || ch.Mode != qrauth.ModeSignUp {
			t.Fatalf("%+v", ch)
		}
		d := q.decision(qrauth.DecisionApprove)
		q.send(qrauth.AppFrame{Type: qrauth.MsgDecision, Decision: qrauth.DecisionApprove, Signature: d.Sign(q.priv),
			PublicKey: base64.RawURLEncoding.EncodeToString(append([]byte{1}, make([]byte, 31)...))})
		wantError(t, q.ws, "weak_public_key", 4400)
	})
}

// TestWeakStoredKeySignsNothing: a device stored with a weak key before
// keys were checked can neither call the app API nor join.
func TestWeakStoredKeySignsNothing(t *testing.T) {
	srv := MustOpenServer(t, nil)
	pub, _ := hex.DecodeString(weakKeys[0])
	now := time.Now()
	u := &qrauth.User{ID: "u_AAAAAAAAAAAAAAAAAAAAAA", Name: "Old", PhoneIDHash: strings.Repeat("c", 64), CreatedAt: now}
	d := &qrauth.Device{ID: qrauth.DeviceIDFromKey(pub), UserID: u.ID, Name: "Old phone", PublicKey: pub,
		PhoneIDHash: u.PhoneIDHash, CreatedAt: now, LastSeenAt: now}
	if err := srv.DB.CreateUser(t.Context(), u, d); err != nil {
		t.Fatal(err)
	}
	// The forgery for the identity key: R = identity, S = 0.
	sig := base64.RawURLEncoding.EncodeToString(append(append([]byte{1}, make([]byte, 31)...), make([]byte, 32)...))
	if !ed25519.Verify(pub, []byte("anything"), append(append([]byte{1}, make([]byte, 31)...), make([]byte, 32)...)) {
		t.Fatal("the standard library refuses the forgery: this test shows nothing")
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/app/sessions", nil)
	req.Header.Set(qrauth.HeaderDevice, string(d.ID))
	req.Header.Set(qrauth.HeaderTime, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(qrauth.HeaderNonce, "AAAAAAAAAAAAAAAAAAAAAA")
	req.Header.Set(qrauth.HeaderSignature, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged app request: %d", resp.StatusCode)
	}
	q := newPhone(t, srv, "+1 202 555 0102")
	b := newBrowser(t, srv)
	wantErrorMsg(t, q.sendJoin(weakJoin(t, srv, pskOf(b.open()), weakKeys[0], u.PhoneIDHash)), q.ws, "weak_public_key", 4400)
}
