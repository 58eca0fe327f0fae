package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/wire"
)

// TestAdminUsersCommands drives every `qrauthd admin users` subcommand
// through the real operator socket of a running qrauthd: phones,
// disable (with a reason), the list showing it, enable, export,
// remove-phone, delete refused without confirmation and done with it,
// and the audit log naming the operator for each.
func TestAdminUsersCommands(t *testing.T) {
	m := MustRunMain(t)
	uid := string(signUp(t, m.Server.Origin(), "+41 79 000 00 01", "Grace Hopper"))
	other := string(signUp(t, m.Server.Origin(), "+41 79 000 00 02", "Ada Lovelace"))
	admin := func(stdin io.Reader, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		ctx := context.Background()
		if stdin != nil {
			ctx = withStdin(ctx, stdin)
		}
		code := runAdmin(ctx, append([]string{"-data", m.DataPath}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, out, errOut := admin(nil, "users", "phones", uid)
	dev := regexp.MustCompile(`(?m)^(d_\S+)`).FindStringSubmatch(out)
	if code != 0 || dev == nil {
		t.Fatalf("phones: %d %q %q", code, out, errOut)
	}

	if code, out, errOut := admin(nil, "users", "disable", uid, "-reason", "on leave"); code != 0 || !strings.Contains(out, "disabled") {
		t.Fatalf("disable: %d %q %q", code, out, errOut)
	}
	_, out, _ = admin(nil, "users")
	if !regexp.MustCompile(`(?m)^`+uid+`.*disabled\s*$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^`+other+`.*enabled\s*$`).MatchString(out) {
		t.Fatalf("users list does not show who is disabled:\n%s", out)
	}
	if code, out, errOut := admin(nil, "users", "enable", uid); code != 0 || !strings.Contains(out, "enabled") {
		t.Fatalf("enable: %d %q %q", code, out, errOut)
	}

	code, out, errOut = admin(nil, "users", "export", uid)
	var x struct {
		User struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
		Devices []struct {
			ID string `json:"id"`
		} `json:"devices"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &x) != nil || x.User.ID != uid || x.User.Name != "Grace Hopper" ||
		len(x.Devices) != 1 || x.Devices[0].ID != dev[1] {
		t.Fatalf("export: %d %q %q", code, out, errOut)
	}

	if code, out, errOut := admin(nil, "users", "remove-phone", uid, dev[1]); code != 0 || !strings.Contains(out, "removed phone") {
		t.Fatalf("remove-phone: %d %q %q", code, out, errOut)
	}
	if _, out, _ := admin(nil, "users", "phones", uid); strings.Contains(out, dev[1]) {
		t.Fatalf("removed phone still listed: %q", out)
	}

	// Without -yes, only the user id typed back deletes.
	if code, _, errOut := admin(strings.NewReader("y\n"), "users", "delete", uid); code != 1 || !strings.Contains(errOut, "not confirmed") {
		t.Fatalf("delete answered y: %d %q", code, errOut)
	}
	if code, _, _ := admin(nil, "user", uid); code != 0 {
		t.Fatal("an unconfirmed delete deleted")
	}
	if code, out, errOut := admin(strings.NewReader(uid+"\n"), "users", "delete", uid); code != 0 || !strings.Contains(out, "Grace Hopper") {
		t.Fatalf("delete confirmed: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := admin(nil, "user", uid); code != 1 || !strings.Contains(errOut, "user_not_found") {
		t.Fatalf("deleted user: %d %q", code, errOut)
	}
	if code, _, errOut := admin(nil, "users", "delete", other, "-yes"); code != 0 {
		t.Fatalf("delete -yes: %d %q", code, errOut)
	}

	_, out, _ = admin(nil, "audit")
	for _, want := range []string{"user_disabled", "user_enabled", "user_exported", "device_removed", "user_deleted"} {
		if !regexp.MustCompile(`(?m)\s` + want + `\s.*\soperator$`).MatchString(out) {
			t.Errorf("audit lacks %s with the operator as actor:\n%s", want, out)
		}
	}
	if strings.Contains(out, uid) || strings.Contains(out, other) {
		t.Errorf("the audit log still names a deleted account:\n%s", out)
	}

	for _, args := range [][]string{{"users", "nope"}, {"users", "disable"}, {"users", "phones"}, {"users", "remove-phone", uid}} {
		if code, _, errOut := admin(nil, args...); code != 2 || !strings.Contains(errOut, "usage") {
			t.Errorf("%v: %d %q, want usage", args, code, errOut)
		}
	}
}

// TestBrowserAdminUserLifecycle: an administrator on the admin page opens
// a user's phones, disables the account with a reason (the row says so),
// enables it again, exports its data as a file link and deletes it after
// the inline confirmation; axe-core finds nothing serious with the phones
// and the disable question open, and the console stays clean.
func TestBrowserAdminUserLifecycle(t *testing.T) {
	m := MustRunMain(t)
	origin := m.Server.Origin()
	adminID := signUp(t, origin, "+41 79 000 00 31", "Ada Lovelace")
	uid := signUp(t, origin, "+41 79 000 00 32", "Grace Hopper")
	if _, err := m.DB.SetRoles(context.Background(), adminID, []qrauth.Role{qrauth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	ctx, problems := newChromium(t)
	w := watchOf(t, ctx)
	chromiumSignIn(t, ctx, m, adminID)
	visit(t, ctx, origin+wire.PathAdmin, `#admin[data-state="ready"]`)
	row := `#users > li[data-user-id="` + string(uid) + `"] `
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := chromedp.Run(c, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	run("phones", chromedp.Click(row+`button[aria-label^="Phones"]`, chromedp.ByQuery),
		chromedp.WaitVisible(row+`.user-phones li[data-device-id] button`, chromedp.ByQuery))
	run("disable question", chromedp.Click(row+`button[aria-label^="Disable "]`, chromedp.ByQuery),
		chromedp.WaitVisible(row+`input[type="text"]`, chromedp.ByQuery))
	w.Check()
	saveScreenshot(t, ctx, "admin-users.png")
	run("disable", chromedp.SendKeys(row+`input[type="text"]`, "on leave", chromedp.ByQuery),
		chromedp.Click(row+`button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(row+`.user-disabled`, chromedp.ByQuery))
	var text string
	run("disabled line", chromedp.Text(row+`.user-disabled`, &text, chromedp.ByQuery))
	if u, err := m.DB.FindUserByID(ctx, uid); err != nil || u.Disabled == nil || !strings.Contains(text, "on leave") {
		t.Fatalf("after disable: %+v %v, row says %q", u, err, text)
	}
	run("enable", chromedp.Click(row+`button[aria-label^="Enable"]`, chromedp.ByQuery),
		chromedp.WaitVisible(row+`button[aria-label^="Disable "]`, chromedp.ByQuery))
	if u, err := m.DB.FindUserByID(ctx, uid); err != nil || u.Disabled != nil {
		t.Fatalf("after enable: %+v %v", u, err)
	}
	var download string
	run("export", chromedp.Click(row+`button[aria-label^="Export data"]`, chromedp.ByQuery),
		chromedp.WaitVisible(row+`a.user-export-link`, chromedp.ByQuery),
		chromedp.AttributeValue(row+`a.user-export-link`, "download", &download, nil, chromedp.ByQuery))
	if download != "qrauth-export-"+string(uid)+".json" {
		t.Fatalf("export link downloads %q", download)
	}
	run("delete", chromedp.Click(row+`button[aria-label^="Delete "]`, chromedp.ByQuery),
		chromedp.Click(row+`button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitNotPresent(row, chromedp.ByQuery))
	if _, err := m.DB.FindUserByID(ctx, uid); qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}
	w.Check()
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestBrowserLoginDisabledAccount: a phone of a disabled account scans the
// login page's code; the phone is refused with account_disabled, and the
// login page says so in its own words (and passes axe-core) instead of
// showing a new code.
func TestBrowserLoginDisabledAccount(t *testing.T) {
	m := MustRunMain(t)
	origin := m.Server.Origin()
	dev := offlineSignUp(t, origin, qrauth.Profile{Name: "Grace Hopper"})
	users, err := m.DB.ListUsers(context.Background(), "", 10)
	if err != nil || len(users) != 1 {
		t.Fatalf("users: %v %v", users, err)
	}
	var out, errOut bytes.Buffer
	if code := runAdmin(context.Background(), []string{"-data", m.DataPath, "users", "disable", string(users[0].ID)}, &out, &errOut); code != 0 {
		t.Fatalf("disable: %d %s", code, errOut.String())
	}
	ctx, problems := newChromium(t)
	w := watchOf(t, ctx)
	if err := chromedp.Run(ctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, "waiting")
	url, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#qr")))
	if err != nil {
		t.Fatal(err)
	}
	if scan, err := dev.Scan(ctx, url, appclient.ScanOptions{}); !errors.Is(err, qrauth.ErrAccountDisabled) {
		if scan != nil {
			scan.Close()
		}
		t.Fatalf("scan by a disabled account's phone: %v, want account_disabled", err)
	}
	waitState(t, ctx, "error")
	var title, reason string
	if err := chromedp.Run(ctx, chromedp.Text("#error-title", &title, chromedp.ByQuery),
		chromedp.AttributeValue("#login", "data-error", &reason, nil, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if title != "Account disabled" || reason != "account_disabled" {
		t.Fatalf("login page says %q (%s)", title, reason)
	}
	w.Check()
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}
