package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/recovery"
	"github.com/qrauth/qrauth/wire"
)

// newRecoveryPhone is a real phone app (appclient) set up for the server
// with number, not yet linked to any account.
func newRecoveryPhone(t *testing.T, srv *testServer, number string) *appclient.Device {
	t.Helper()
	d, err := appclient.Init(t.Context(), appclient.InitOptions{Server: srv.URL, Phone: number, Name: "New phone"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// generateCodes makes a new set of recovery codes from the account page.
func generateCodes(t *testing.T, b *browser) []string {
	t.Helper()
	st, body := b.do("POST", wire.PathRecoveryCodes, "")
	if st != 200 {
		t.Fatalf("generate: %d %v", st, body)
	}
	var codes []string
	for _, c := range body["codes"].([]any) {
		codes = append(codes, c.(string))
	}
	if len(codes) != recovery.SetSize || body["status"].(map[string]any)["remaining"] != float64(recovery.SetSize) {
		t.Fatalf("generate: %v", body)
	}
	return codes
}

// signInWithDevice signs a new browser in by QR with a real phone app.
func signInWithDevice(t *testing.T, srv *testServer, d *appclient.Device) *browser {
	t.Helper()
	b := newBrowser(t, srv)
	qr := b.open()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	scan, err := d.Scan(ctx, qr.URL, appclient.ScanOptions{})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	defer scan.Close()
	if scan.Challenge.Mode != wire.ModeLogin {
		t.Fatalf("challenge mode %q, want login", scan.Challenge.Mode)
	}
	if _, err := scan.Approve(ctx, appclient.ApproveOptions{}); err != nil {
		t.Fatalf("approve: %v", err)
	}
	var m *wire.ServerMessage
	for m = b.next(); m.Type == wire.MsgScanned; m = b.next() {
	}
	if m.Type != wire.MsgApproved {
		t.Fatalf("browser: %+v", m)
	}
	if st, body := b.exchange(m.Ticket); st != 200 {
		t.Fatalf("exchange: %d %v", st, body)
	}
	return b
}

func meID(t *testing.T, b *browser) qrauth.UserID {
	t.Helper()
	st, me := b.do("GET", wire.PathMe, "")
	if st != 200 {
		t.Fatalf("me: %d %v", st, me)
	}
	return qrauth.UserID(me["user"].(map[string]any)["id"].(string))
}

func lastAudit(t *testing.T, srv *testServer, uid qrauth.UserID) *qrauth.AuditEvent {
	t.Helper()
	evs, err := srv.DB.ListAudit(context.Background(), qrauth.AuditFilter{UserID: uid, Limit: 1000})
	if err != nil || len(evs) == 0 {
		t.Fatalf("audit: %v, %v", evs, err)
	}
	return evs[len(evs)-1]
}

// A recovery code links a new phone, signs out every browser of the
// account, works once, and the new phone then signs in by QR.
func TestRecoveryCodeLinksNewPhone(t *testing.T) {
	srv := MustOpenServer(t, nil)
	old := newPhone(t, srv, "+41 79 123 45 67")
	b1 := signUp(t, srv, old)
	b2 := signIn(t, srv, old)
	uid := meID(t, b1)
	if st, body := b1.do("GET", wire.PathRecovery, ""); st != 200 || body["remaining"] != float64(0) {
		t.Fatalf("status before: %d %v", st, body)
	}
	first := generateCodes(t, b1)
	codes := generateCodes(t, b1) // regenerating replaces the old set
	if st, body := b1.do("GET", wire.PathRecovery, ""); st != 200 || body["remaining"] != float64(recovery.SetSize) {
		t.Fatalf("status: %d %v", st, body)
	}

	// The lost phone's number moves to the new phone (a new SIM): the
	// usual case.
	dev := newRecoveryPhone(t, srv, "+41 79 123 45 67")
	if _, err := dev.Recover(t.Context(), first[0]); qrauth.ErrorReason(err) != "bad_recovery_code" {
		t.Fatalf("a code of the replaced set: %v", err)
	}
	r, err := dev.Recover(t.Context(), strings.ToLower(codes[3]))
	if err != nil {
		t.Fatal(err)
	}
	if r.UserID != uid || r.SessionsEnded != 2 || r.Remaining != recovery.SetSize-1 || r.Kind != recovery.KindRecovery ||
		r.Device.ID != dev.ID() || r.Account.Name != "Ada Lovelace" {
		t.Fatalf("recover: %+v", r)
	}
	for _, b := range []*browser{b1, b2} {
		if st, body := b.do("GET", wire.PathMe, ""); st != 401 {
			t.Fatalf("an old browser after recovery: %d %v", st, body)
		}
	}
	ev := lastAudit(t, srv, uid)
	if ev.Type != recovery.AuditRecovered || ev.DeviceID != dev.ID() || !strings.Contains(ev.Detail, "2 sessions ended") {
		t.Fatalf("audit: %+v", ev)
	}
	if strings.Contains(ev.Detail, codes[3]) {
		t.Fatal("the code is in the audit log")
	}

	// Used once: another new phone cannot use it again.
	other := newRecoveryPhone(t, srv, "+41 79 555 55 55")
	if _, err := other.Recover(t.Context(), codes[3]); qrauth.ErrorReason(err) != "bad_recovery_code" {
		t.Fatalf("second use: %v", err)
	}
	// The same phone a second time is refused: it is already registered.
	if _, err := dev.Recover(t.Context(), codes[4]); qrauth.ErrorReason(err) != "device_exists" {
		t.Fatalf("a registered phone: %v", err)
	}

	b3 := signInWithDevice(t, srv, dev)
	if got := meID(t, b3); got != uid {
		t.Fatalf("the new phone signed in to %q, want %q", got, uid)
	}
	if st, body := b3.do("GET", wire.PathRecovery, ""); st != 200 || body["remaining"] != float64(recovery.SetSize-1) {
		t.Fatalf("status after: %d %v", st, body)
	}
}

// Of concurrent uses of one code, exactly one links its phone.
func TestRecoveryCodeConcurrentUse(t *testing.T) {
	srv := MustOpenServer(t, nil)
	b := signUp(t, srv, newPhone(t, srv, "+41 79 123 45 67"))
	code := generateCodes(t, b)[0]
	const n = 5
	devs := make([]*appclient.Device, n)
	for i := range devs {
		devs[i] = newRecoveryPhone(t, srv, "+41 79 555 55 5"+string(rune('0'+i)))
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range devs {
		wg.Go(func() { _, errs[i] = devs[i].Recover(t.Context(), code) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if qrauth.ErrorReason(err) != "bad_recovery_code" {
			t.Fatalf("concurrent use: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent uses succeeded", ok, n)
	}
}

// A helpdesk link code does what a recovery code does, names its issuer
// in the audit log, works once and expires.
func TestRecoveryHelpdeskLinkCode(t *testing.T) {
	clock := &offlineClock{}
	srv := MustOpenServer(t, func(c *testConfig) { c.Now = clock.Now })
	target := signUp(t, srv, newPhone(t, srv, "+41 79 123 45 67"))
	uid := meID(t, target)
	hp := newPhone(t, srv, "+41 79 222 22 22")
	helpdesk := signUp(t, srv, hp)
	hid := meID(t, helpdesk)
	link := wire.Path(wire.PathAdminRecoveryLink, string(uid))

	st, body := helpdesk.do("POST", link, "")
	wantReason(t, st, body, 403, "forbidden")
	if _, err := srv.DB.SetRoles(context.Background(), hid, []qrauth.Role{qrauth.RoleHelpdesk}); err != nil {
		t.Fatal(err)
	}
	st, body = helpdesk.do("POST", wire.Path(wire.PathAdminRecoveryLink, "u_nobody"), "")
	wantReason(t, st, body, 404, "user_not_found")
	// The admin list and status show the codes the person has.
	adminRecovery := func() any {
		_, list := helpdesk.do("GET", wire.PathAdminUsers, "")
		for _, u := range list["users"].([]any) {
			if u := u.(map[string]any); u["id"] == string(uid) {
				return u["methods"].(map[string]any)["recovery"]
			}
		}
		t.Fatal("user not in the admin list")
		return nil
	}
	if got := adminRecovery(); got != false {
		t.Fatalf("admin list without codes: %v", got)
	}
	generateCodes(t, target)
	if got, ok := adminRecovery().(map[string]any); !ok || got["remaining"] != float64(recovery.SetSize) {
		t.Fatalf("admin list with codes: %v", got)
	}
	if st, body := helpdesk.do("GET", wire.Path(wire.PathAdminRecoveryUser, string(uid)), ""); st != 200 || body["remaining"] != float64(recovery.SetSize) {
		t.Fatalf("admin status: %d %v", st, body)
	}
	st, body = helpdesk.do("POST", link, "")
	if st != 200 || !strings.HasPrefix(body["qr"].(string), "data:image/png;base64,") ||
		body["url"] != wire.RecoverURL(srv.URL, body["code"].(string)) {
		t.Fatalf("link code: %d %v", st, body)
	}
	exp, _ := time.Parse(time.RFC3339Nano, body["expires_at"].(string))
	if d := exp.Sub(clock.Now()); d < 14*time.Minute || d > 15*time.Minute {
		t.Fatalf("expires in %s, want 15m", d)
	}
	if ev := lastAudit(t, srv, uid); ev.Type != recovery.AuditLinkIssued || !strings.Contains(ev.Detail, "issued by "+string(hid)) {
		t.Fatalf("audit of the issue: %+v", ev)
	}

	// The phone scans the QR code: its URL carries the code.
	dev := newRecoveryPhone(t, srv, "+41 79 333 33 33")
	r, err := dev.Recover(t.Context(), body["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if r.UserID != uid || r.Kind != recovery.KindLink || r.SessionsEnded != 1 {
		t.Fatalf("recover: %+v", r)
	}
	if st, _ := target.do("GET", wire.PathMe, ""); st != 401 {
		t.Fatalf("the old browser after recovery: %d", st)
	}
	if st, _ := helpdesk.do("GET", wire.PathMe, ""); st != 200 {
		t.Fatalf("the helpdesk's own session ended: %d", st)
	}
	if ev := lastAudit(t, srv, uid); ev.Type != recovery.AuditRecovered || !strings.Contains(ev.Detail, "issued by "+string(hid)) {
		t.Fatalf("audit of the use: %+v", ev)
	}
	if got := meID(t, signInWithDevice(t, srv, dev)); got != uid {
		t.Fatalf("signed in to %q", got)
	}
	other := newRecoveryPhone(t, srv, "+41 79 444 44 44")
	if _, err := other.Recover(t.Context(), body["code"].(string)); qrauth.ErrorReason(err) != "bad_recovery_code" {
		t.Fatalf("second use: %v", err)
	}

	// A code from another origin's QR is refused before anything is sent.
	if _, err := other.Recover(t.Context(), wire.RecoverURL("https://evil.example", body["code"].(string))); qrauth.ErrorReason(err) != "foreign_origin" {
		t.Fatalf("foreign QR: %v", err)
	}

	st, body = helpdesk.do("POST", link, "")
	if st != 200 {
		t.Fatalf("second link code: %d %v", st, body)
	}
	clock.advance(15 * time.Minute)
	if _, err := other.Recover(t.Context(), body["code"].(string)); qrauth.ErrorReason(err) != "link_code_expired" {
		t.Fatalf("expired link code: %v", err)
	}
}

// Wrong codes: counted against the account the phone's number names
// until its recovery codes lock (a link code still works), and limited
// per address, where even a right code is then refused.
func TestRecoveryWrongCodesLimited(t *testing.T) {
	srv := MustOpenServer(t, func(c *testConfig) {
		c.Recovery.MaxFailures = 2
		c.Recovery.WrongBurst = 3
	})
	b := signUp(t, srv, newPhone(t, srv, "+41 79 123 45 67"))
	uid := meID(t, b)
	codes := generateCodes(t, b)
	dev := newRecoveryPhone(t, srv, "+41 79 123 45 67") // the account's number
	wrong := "0000-0000-0000-0000"

	if _, err := dev.Recover(t.Context(), "not a code"); qrauth.ErrorReason(err) != "invalid_recovery_code" {
		t.Fatalf("malformed code: %v", err)
	}
	for i := range 2 {
		if _, err := dev.Recover(t.Context(), wrong); qrauth.ErrorReason(err) != "bad_recovery_code" {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	if ev := lastAudit(t, srv, uid); ev.Type != recovery.AuditLocked {
		t.Fatalf("audit after the lock: %+v", ev)
	}
	if _, err := dev.Recover(t.Context(), codes[0]); qrauth.ErrorReason(err) != "recovery_locked" {
		t.Fatalf("right code after the lock: %v", err)
	}
	if st, body := b.do("GET", wire.PathRecovery, ""); body["locked"] != true || body["remaining"] != float64(recovery.SetSize) {
		t.Fatalf("status: %d %v", st, body)
	}
	// Nothing changed: the browser is still signed in.
	if st, _ := b.do("GET", wire.PathMe, ""); st != 200 {
		t.Fatalf("a refused recovery ended the session: %d", st)
	}
	if _, err := dev.Recover(t.Context(), wrong); qrauth.ErrorReason(err) != "bad_recovery_code" {
		t.Fatalf("third wrong code: %v", err)
	}
	_, err := dev.Recover(t.Context(), codes[0])
	if qrauth.ErrorCode(err) != qrauth.ERATELIMITED || qrauth.ErrorReason(err) != "too_many_wrong_codes" {
		t.Fatalf("right code after the address's limit: %v", err)
	}
}

// A request not signed by the key it carries is refused before the code
// is looked up: the code still works afterwards.
func TestRecoveryBadSignatureBurnsNothing(t *testing.T) {
	srv := MustOpenServer(t, nil)
	b := signUp(t, srv, newPhone(t, srv, "+41 79 123 45 67"))
	code := generateCodes(t, b)[0]
	dev := newRecoveryPhone(t, srv, "+41 79 555 55 55")
	thief := newRecoveryPhone(t, srv, "+41 79 666 66 66")
	canon, _ := recovery.Normalize(code)
	signed := wire.Recover{Origin: srv.URL, Code: canon, DeviceID: dev.ID(), PhoneIDHash: dev.PhoneIDHash, DeviceName: "x"}
	for name, req := range map[string]wire.RecoverRequest{
		"OtherKeysSignature": {Code: code, DeviceID: dev.ID(), PublicKey: b64(dev.PublicKey()), PhoneIDHash: dev.PhoneIDHash,
			DeviceName: "x", Signature: signed.Sign(thief.PrivateKey)},
		"KeyNotTheDevices": {Code: code, DeviceID: dev.ID(), PublicKey: b64(thief.PublicKey()), PhoneIDHash: dev.PhoneIDHash,
			DeviceName: "x", Signature: signed.Sign(thief.PrivateKey)},
		"OtherName": {Code: code, DeviceID: dev.ID(), PublicKey: b64(dev.PublicKey()), PhoneIDHash: dev.PhoneIDHash,
			DeviceName: "y", Signature: signed.Sign(dev.PrivateKey)},
	} {
		body, _ := json.Marshal(req)
		st, resp := b.do("POST", wire.PathAppRecover, string(body))
		if st != 401 || resp["reason"] != "bad_signature" {
			t.Errorf("%s: %d %v", name, st, resp)
		}
	}
	st, resp := b.do("POST", wire.PathAppRecover, `{"code":1}`)
	wantReason(t, st, resp, 400, "malformed_body")
	if _, err := dev.Recover(t.Context(), code); err != nil {
		t.Fatalf("the code after refused requests: %v", err)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
