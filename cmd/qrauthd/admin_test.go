package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/wire"
)

// signUp creates an account through the protocol: a raw browser socket
// and the real appclient. It returns the new user's id.
func signUp(t *testing.T, origin, phone, name string) qrauth.UserID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: phone})
	if err != nil {
		t.Fatal(err)
	}
	done, err := qrSignInFrame(ctx, origin, dev, &qrauth.Profile{Name: name})
	if err != nil || done.Result != wire.ResultSignedUp {
		t.Fatalf("sign-up: %+v %v", done, err)
	}
	return done.UserID
}

// qrSignInFrame has dev scan a new login code of a raw browser socket and
// approve it, signing up with profile when the phone has no account. It
// returns errors rather than failing, for tests that run it from many
// goroutines.
func qrSignInFrame(ctx context.Context, origin string, dev *appclient.Device, profile *qrauth.Profile) (*wire.ServerMessage, error) {
	resp, err := http.Get(origin + wire.PathLogin)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	var bind string
	for _, c := range resp.Cookies() {
		if c.Name == "qrauth_bind" {
			bind = c.Value
		}
	}
	h := http.Header{"Origin": {origin}, "Cookie": {"qrauth_bind=" + bind}}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(origin, "http")+wire.PathBrowserSocket, h)
	if err != nil {
		return nil, err
	}
	defer ws.Close()
	var qr wire.ServerMessage
	if err := ws.ReadJSON(&qr); err != nil {
		return nil, err
	}
	scan, err := dev.Scan(ctx, qr.URL, appclient.ScanOptions{})
	if err != nil {
		return nil, err
	}
	defer scan.Close()
	return scan.Approve(ctx, appclient.ApproveOptions{Profile: profile})
}

func TestAdminCommands(t *testing.T) {
	m := MustRunMain(t)
	uid := signUp(t, m.Server.Origin(), "+41 79 000 00 01", "Grace Hopper")
	admin := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runAdmin(context.Background(), append([]string{"-data", m.DataPath}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := admin("users"); code != 0 || !strings.Contains(out, string(uid)) || !strings.Contains(out, "Grace Hopper") {
		t.Fatalf("users: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := admin("roles", string(uid), "admin", "helpdesk"); code != 0 {
		t.Fatalf("roles: %d %q", code, errOut)
	}
	code, out, _ := admin("user", string(uid))
	var u struct {
		User struct {
			Roles []string `json:"roles"`
		} `json:"user"`
	}
	json.Unmarshal([]byte(out), &u)
	if code != 0 || strings.Join(u.User.Roles, ",") != "admin,helpdesk" {
		t.Fatalf("user: %d %s", code, out)
	}
	if code, _, errOut := admin("roles", string(uid), "root"); code != 1 || !strings.Contains(errOut, "invalid_role") {
		t.Fatalf("bad role: %d %q", code, errOut)
	}
	if code, out, _ := admin("audit"); code != 0 || !strings.Contains(out, "roles_changed") || !strings.Contains(out, "signup") {
		t.Fatalf("audit: %d %q", code, out)
	}
	if code, _, _ := admin("nope"); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
	// The admin API over TCP needs a session with the role.
	resp, err := http.Get(m.Server.Origin() + wire.PathAdminUsers)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("anonymous admin API: %d", resp.StatusCode)
	}
}
