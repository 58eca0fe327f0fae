package server_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/wire"
)

// operator is `qrauthd admin` in a test: an HTTP client on the server's
// admin socket.
type operator struct {
	tb     testing.TB
	client *http.Client
}

// withOperator starts a server with an admin socket and returns it with
// the operator's client.
func withOperator(t *testing.T) (*testServer, *operator) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "admin.sock")
	srv := MustOpenServer(t, func(c *testConfig) { c.AdminSocket = sock })
	return srv, &operator{tb: t, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}}
}

func (o *operator) do(method, path, body string) (int, string) {
	o.tb.Helper()
	req, _ := http.NewRequest(method, "http://qrauthd"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.client.Do(req)
	if err != nil {
		o.tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func userID(t *testing.T, b *browser) qrauth.UserID {
	t.Helper()
	st, me := b.do("GET", wire.PathMe, "")
	if st != 200 {
		t.Fatalf("me: %d %v", st, me)
	}
	return qrauth.UserID(me["user"].(map[string]any)["id"].(string))
}

func wantMsgReason(t *testing.T, what string, m *wire.ServerMessage, reason string) {
	t.Helper()
	if m.Type != wire.MsgError || m.Reason != reason {
		t.Fatalf("%s: %+v, want error %s", what, m, reason)
	}
}

// auditHas reports whether the log holds an event of typ for uid whose
// detail contains detail.
func auditHas(t *testing.T, srv *testServer, uid qrauth.UserID, typ, detail string) bool {
	t.Helper()
	evs, err := srv.DB.ListAudit(t.Context(), qrauth.AuditFilter{UserID: uid, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type == typ && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

// TestAdminDisableUser: disabling an account ends its open sessions at
// once (the page's next call is 401), its phone's join is refused with
// account_disabled on both sides, its device-signed calls are refused,
// and another account is untouched; enabling it lets the same phone in
// again. Both are audited with the operator as actor.
func TestAdminDisableUser(t *testing.T) {
	srv, op := withOperator(t)
	p := newPhone(t, srv, "+41 79 123 45 67")
	b := signUp(t, srv, p)
	uid := userID(t, b)
	other := signUp(t, srv, newPhone(t, srv, "+41 79 765 43 21"))

	st, body := op.do("POST", wire.Path(wire.PathAdminUserDisable, string(uid)), `{"reason":"left the company"}`)
	if st != 200 || !strings.Contains(body, `"ended_sessions":1`) || !strings.Contains(body, `"reason":"left the company"`) {
		t.Fatalf("disable: %d %s", st, body)
	}
	if st, _ := b.do("GET", wire.PathMe, ""); st != 401 {
		t.Fatalf("disabled user's open session: %d, want 401", st)
	}
	if st, _ := other.do("GET", wire.PathMe, ""); st != 200 {
		t.Fatalf("another user's session: %d", st)
	}

	b2 := newBrowser(t, srv)
	wantMsgReason(t, "phone's join", p.join(b2.open()), "account_disabled")
	if code := readClose(t, p.ws); code != wire.CloseCode(qrauth.EFORBIDDEN) {
		t.Fatalf("phone closed with %d", code)
	}
	// The browser says why rather than showing a code no phone of this
	// account could use.
	wantMsgReason(t, "browser", b2.next(), "account_disabled")

	if r := p.signed("GET", wire.PathAppSessions, "bm9uY2UtZGlzYWJsZWQx", time.Now()); r.StatusCode != 403 {
		t.Fatalf("device-signed call of a disabled account: %d, want 403", r.StatusCode)
	}

	// Bad input changes nothing.
	for _, bad := range []string{`{"reason":"two\nlines"}`, `{"why":"x"}`, `not json`} {
		if st, body := op.do("POST", wire.Path(wire.PathAdminUserDisable, string(uid)), bad); st != 400 {
			t.Fatalf("disable with %q: %d %s", bad, st, body)
		}
	}
	if st, body := op.do("POST", wire.Path(wire.PathAdminUserDisable, "u_nobody"), `{}`); st != 404 || !strings.Contains(body, "user_not_found") {
		t.Fatalf("disable unknown: %d %s", st, body)
	}

	if st, body := op.do("POST", wire.Path(wire.PathAdminUserEnable, string(uid)), `{}`); st != 200 || strings.Contains(body, `"disabled"`) {
		t.Fatalf("enable: %d %s", st, body)
	}
	b3 := signIn(t, srv, p)
	if got := userID(t, b3); got != uid {
		t.Fatalf("signed in as %s, want %s", got, uid)
	}
	if !auditHas(t, srv, uid, qrauth.AuditUserDisabled, "by operator: left the company") ||
		!auditHas(t, srv, uid, qrauth.AuditUserEnabled, "by operator") {
		t.Fatal("disable and enable are not in the audit log with their actor")
	}
}

// TestAdminDisableOwnAccount: an administrator cannot disable or delete
// the account they are signed in with, and a helpdesk user cannot
// disable anyone.
func TestAdminDisableOwnAccount(t *testing.T) {
	srv, op := withOperator(t)
	b := signUp(t, srv, newPhone(t, srv, "+41 79 123 45 67"))
	uid := userID(t, b)
	if st, body := op.do("PUT", wire.Path(wire.PathAdminUserRoles, string(uid)), `{"roles":["helpdesk"]}`); st != 200 {
		t.Fatalf("roles: %d %s", st, body)
	}
	if st, _ := b.do("POST", wire.Path(wire.PathAdminUserDisable, string(uid)), `{}`); st != 403 {
		t.Fatalf("helpdesk disables: %d, want 403", st)
	}
	if st, body := op.do("PUT", wire.Path(wire.PathAdminUserRoles, string(uid)), `{"roles":["admin"]}`); st != 200 {
		t.Fatalf("roles: %d %s", st, body)
	}
	if st, body := b.do("POST", wire.Path(wire.PathAdminUserDisable, string(uid)), `{}`); st != 409 || body["reason"] != "own_account" {
		t.Fatalf("admin disables self: %d %v", st, body)
	}
	if st, body := b.do("DELETE", wire.Path(wire.PathAdminUser, string(uid)), ""); st != 409 || body["reason"] != "own_account" {
		t.Fatalf("admin deletes self: %d %v", st, body)
	}
	if st, _ := b.do("GET", wire.PathMe, ""); st != 200 {
		t.Fatal("a refused disable changed something")
	}
}

// TestAdminRemovePhone: removing a phone ends the session it approved and
// the phone can no longer sign in; another account's phone cannot be
// removed through this account.
func TestAdminRemovePhone(t *testing.T) {
	srv, op := withOperator(t)
	p := newPhone(t, srv, "+41 79 123 45 67")
	b := signUp(t, srv, p)
	uid := userID(t, b)
	q := newPhone(t, srv, "+41 79 765 43 21")
	signUp(t, srv, q)

	st, body := op.do("GET", wire.Path(wire.PathAdminUserDevices, string(uid)), "")
	if st != 200 || !strings.Contains(body, string(p.id)) || strings.Contains(body, string(q.id)) {
		t.Fatalf("phones: %d %s", st, body)
	}
	if st, body := op.do("DELETE", wire.Path(wire.PathAdminUserDevice, string(uid), string(q.id)), ""); st != 404 ||
		!strings.Contains(body, "device_not_found") {
		t.Fatalf("removing another account's phone: %d %s", st, body)
	}
	st, body = op.do("DELETE", wire.Path(wire.PathAdminUserDevice, string(uid), string(p.id)), "")
	if st != 200 || !strings.Contains(body, `"ended_sessions":1`) {
		t.Fatalf("remove: %d %s", st, body)
	}
	if st, _ := b.do("GET", wire.PathMe, ""); st != 401 {
		t.Fatalf("session the removed phone approved: %d, want 401", st)
	}
	wantMsgReason(t, "removed phone's join", p.join(newBrowser(t, srv).open()), "device_not_linked")
	if !auditHas(t, srv, uid, qrauth.AuditDeviceRemoved, "by operator") {
		t.Fatal("removal not audited with its actor")
	}
}

// TestAdminExportUser: the export holds the account, its phone's public
// key, its session and its audit events, and none of the secrets or
// hashes the server keeps: not the session cookie, its hash, the phone
// hash or the bind cookie.
func TestAdminExportUser(t *testing.T) {
	srv, op := withOperator(t)
	p := newPhone(t, srv, "+41 79 123 45 67")
	b := signUp(t, srv, p)
	uid := userID(t, b)
	u, _ := url.Parse(srv.URL)
	var cookie, bind string
	for _, c := range b.client.Jar.Cookies(u) {
		switch c.Name {
		case "qrauth_session":
			cookie = c.Value
		case "qrauth_bind":
			bind = c.Value
		}
	}
	if cookie == "" || bind == "" {
		t.Fatal("no session or bind cookie: the test would prove nothing")
	}
	st, body := op.do("GET", wire.Path(wire.PathAdminUserExport, string(uid)), "")
	if st != 200 {
		t.Fatalf("export: %d %s", st, body)
	}
	var x struct {
		User struct {
			ID    string `json:"id"`
			Name  string `json:"name"`
			Email string `json:"email"`
		} `json:"user"`
		Devices []struct {
			ID        string `json:"id"`
			PublicKey string `json:"public_key"`
		} `json:"devices"`
		Sessions []struct {
			ID string `json:"id"`
			IP string `json:"ip"`
		} `json:"sessions"`
		Audit   []qrauth.AuditEvent `json:"audit"`
		Methods map[string]any      `json:"methods"`
	}
	if err := json.Unmarshal([]byte(body), &x); err != nil {
		t.Fatal(err)
	}
	if x.User.ID != string(uid) || x.User.Name != "Ada Lovelace" || x.User.Email != "ada@example.com" ||
		len(x.Devices) != 1 || x.Devices[0].ID != string(p.id) || x.Devices[0].PublicKey != base64.StdEncoding.EncodeToString(p.pub) ||
		len(x.Sessions) != 1 || x.Sessions[0].IP == "" || len(x.Audit) < 2 || x.Audit[0].Type != qrauth.AuditSignUp ||
		x.Methods["qr"] != true {
		t.Fatalf("export lacks something: %s", body)
	}
	hash := qrauth.HashToken(cookie)
	for name, secret := range map[string]string{
		"session cookie": cookie, "bind cookie": bind, "phone hash": p.phone,
		"session token hash (base64)": base64.StdEncoding.EncodeToString(hash), "session token hash (hex)": hex.EncodeToString(hash),
	} {
		if strings.Contains(body, secret) {
			t.Errorf("export contains the %s", name)
		}
	}
	if !auditHas(t, srv, uid, qrauth.AuditUserExported, "by operator") {
		t.Fatal("export not audited")
	}
	if st, _ := op.do("GET", wire.Path(wire.PathAdminUserExport, "u_nobody"), ""); st != 404 {
		t.Fatalf("export unknown: %d", st)
	}
}

// TestAdminDeleteUser: a deleted account's session ends, its audit events
// lose their user, a deletion event names only the actor, and the same
// number signs up afresh, even with the old phone.
func TestAdminDeleteUser(t *testing.T) {
	srv, op := withOperator(t)
	p := newPhone(t, srv, "+41 79 123 45 67")
	b := signUp(t, srv, p)
	uid := userID(t, b)
	if st, body := op.do("DELETE", wire.Path(wire.PathAdminUser, string(uid)), ""); st != 204 {
		t.Fatalf("delete: %d %s", st, body)
	}
	if st, _ := b.do("GET", wire.PathMe, ""); st != 401 {
		t.Fatalf("deleted user's session: %d, want 401", st)
	}
	if st, body := op.do("DELETE", wire.Path(wire.PathAdminUser, string(uid)), ""); st != 404 || !strings.Contains(body, "user_not_found") {
		t.Fatalf("delete again: %d %s", st, body)
	}
	evs, err := srv.DB.ListAudit(t.Context(), qrauth.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var deleted bool
	for _, e := range evs {
		if e.UserID == uid || e.DeviceID == p.id || strings.Contains(e.Detail, string(uid)) {
			t.Errorf("audit event %d still names the deleted account: %+v", e.Seq, e)
		}
		deleted = deleted || e.Type == qrauth.AuditUserDeleted && strings.Contains(e.Detail, "by operator")
	}
	if !deleted {
		t.Fatalf("no deletion event: %+v", evs)
	}
	// The old phone is a stranger now: it signs up a new account.
	b2 := signUp(t, srv, p)
	if got := userID(t, b2); got == uid {
		t.Fatal("the new account has the deleted one's id")
	}
}

// TestOfflineCodesOfDisabledUser: a relying site can neither begin an
// offline code session for a disabled account nor have a code verified on
// a session begun before; the refusal counts no wrong code, so once the
// account is enabled the same code verifies.
func TestOfflineCodesOfDisabledUser(t *testing.T) {
	e := newOfflineEnv(t, nil)
	e.activate(offline.PIN, "4711")
	s := e.begin(offline.PIN, "Pay 10 CHF")
	otp := e.code(s, "4711")
	if _, _, err := e.srv.DB.DisableUser(t.Context(), e.uid, qrauth.Disabled{At: time.Now(), By: "operator"}); err != nil {
		t.Fatal(err)
	}
	if st, body := e.verify(s, otp); st != 403 || body["reason"] != "account_disabled" {
		t.Fatalf("verify for a disabled account: %d %v", st, body)
	}
	st, body := e.api("POST", wire.PathOfflineSessions, map[string]any{"user_id": e.uid, "method": offline.PIN, "context": "x"})
	if st != 403 || body["reason"] != "account_disabled" {
		t.Fatalf("begin for a disabled account: %d %v", st, body)
	}
	if _, err := e.srv.DB.EnableUser(t.Context(), e.uid); err != nil {
		t.Fatal(err)
	}
	if st, body := e.verify(s, otp); st != 200 || body["result"] != "success" {
		t.Fatalf("verify after enable: %d %v", st, body)
	}
}

// TestDisabledWhileDeciding: an account disabled after its phone joined
// and before it approved gets no ticket: both sides hear account_disabled.
func TestDisabledWhileDeciding(t *testing.T) {
	srv, p := registered(t, nil)
	b := newBrowser(t, srv)
	ch := p.join(b.open())
	if ch.Type != wire.MsgChallenge {
		t.Fatalf("join: %+v", ch)
	}
	b.next() // scanned
	users, err := srv.DB.ListUsers(t.Context(), "", 10)
	if err != nil || len(users) != 1 {
		t.Fatalf("users: %v %v", users, err)
	}
	if _, _, err := srv.DB.DisableUser(t.Context(), users[0].ID, qrauth.Disabled{At: time.Now(), By: "operator"}); err != nil {
		t.Fatal(err)
	}
	wantMsgReason(t, "phone's approval", p.decide(wire.DecisionApprove, false, nil), "account_disabled")
	wantMsgReason(t, "browser", b.next(), "account_disabled")
}
