package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/wire"
)

// The forward-auth tests put Debian's real nginx and Caddy, configured with
// the very blocks of docs/integration.md, between headless Chromium and a
// small application; the browser resolves *.example.test to 127.0.0.1, so
// that app.example.test and login.example.test share the cookie domain
// example.test.

// integrationBlock returns the fenced block of language lang in the forward
// auth section of docs/integration.md.
func integrationBlock(t *testing.T, lang string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "integration.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Forward auth for reverse proxies\n")
	if !ok {
		t.Fatal(`docs/integration.md has no "## Forward auth for reverse proxies" section`)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	_, block, ok := strings.Cut(sec, "\n```"+lang+"\n")
	if !ok {
		t.Fatalf("docs/integration.md, forward auth: no ```%s block", lang)
	}
	block, _, _ = strings.Cut(block, "\n```\n")
	return block
}

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startProxy runs name with args until the test ends and waits until its
// log says ready.
func startProxy(t *testing.T, dir, ready string, env []string, name string, args ...string) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: the forward-auth tests run the real proxy (apt-get install -y nginx caddy; .ci/run does it)", name)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	var logBuf bytes.Buffer
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logBuf.String())
		}
	})
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s exited before it was ready:\n%s", name, logBuf.String())
			}
			logBuf.WriteString(l + "\n")
			if strings.Contains(l, ready) {
				go func() { // keep draining, so the proxy never blocks on its log
					for l := range lines {
						_ = l
					}
				}()
				return
			}
		case <-deadline:
			t.Fatalf("%s not ready after 20 s:\n%s", name, logBuf.String())
		}
	}
}

// startNginx runs nginx with the documented server blocks inside an http
// block of its own (temporary paths, log to stderr).
func startNginx(t *testing.T, port int, qrauthAddr, appAddr string) {
	t.Helper()
	runNginx(t, testutil.Substitute(t, integrationBlock(t, "nginx"),
		"example.com", "example.test",
		"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port),
		"127.0.0.1:8080", qrauthAddr,
		"127.0.0.1:3000", appAddr))
}

// runNginx runs nginx with conf, the contents of an http block, until the
// test ends.
func runNginx(t *testing.T, conf string) {
	t.Helper()
	dir := t.TempDir()
	full := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, conf)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	startProxy(t, dir, "start worker process", nil, "nginx", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
}

// startCaddy runs Caddy with the documented sites as plain http sites on
// port, bound to loopback, with no admin endpoint.
func startCaddy(t *testing.T, port int, qrauthAddr, appAddr string) {
	t.Helper()
	conf := testutil.Substitute(t, integrationBlock(t, "caddyfile"),
		"example.com", "example.test",
		"127.0.0.1:8080", qrauthAddr,
		"127.0.0.1:3000", appAddr)
	site := regexp.MustCompile(`(?m)^([a-z0-9.-]+\.example\.test) \{$`)
	if len(site.FindAllString(conf, -1)) != 2 {
		t.Fatalf("want the login and app sites in the documented Caddyfile:\n%s", conf)
	}
	runCaddy(t, "auto_https off", "serving initial configuration", site.ReplaceAllString(conf, fmt.Sprintf("http://$1:%d {", port)))
}

// runCaddy runs Caddy with the sites of conf, bound to loopback, with no
// admin endpoint and global options extra, until the test ends; ready is
// the log line to wait for. It returns Caddy's storage directory.
func runCaddy(t *testing.T, extra, ready, conf string) string {
	t.Helper()
	dir := t.TempDir()
	storage := filepath.Join(dir, "data")
	full := fmt.Sprintf("{\n\tadmin off\n\t%s\n\tdefault_bind 127.0.0.1\n\tstorage file_system %s\n}\n\n%s\n", extra, storage, conf)
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	startProxy(t, dir, ready,
		[]string{"HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "XDG_DATA_HOME=" + dir},
		"caddy", "run", "--config", file, "--adapter", "caddyfile")
	return storage
}

// remoteApp is the protected application: a page showing the Remote-*
// headers the proxy passed on.
func remoteApp(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The app</title></head>
<body><main><h1>The app</h1>
<p>Remote-User: <span id="user">%s</span></p>
<p>Remote-Name: <span id="name">%s</span></p>
<p>Remote-Email: <span id="email">%s</span></p>
<p>Remote-Groups: <span id="groups">%s</span></p>
<p>Path: <span id="path">%s</span></p>
</main></body></html>
`, html.EscapeString(r.Header.Get("Remote-User")), html.EscapeString(r.Header.Get("Remote-Name")),
			html.EscapeString(r.Header.Get("Remote-Email")), html.EscapeString(r.Header.Get("Remote-Groups")),
			html.EscapeString(r.URL.RequestURI()))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// exampleTestDial dials every *.example.test host at 127.0.0.1, as the
// browser's resolver rule does, so the phone reaches qrauth through the
// proxy too.
func exampleTestDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && strings.HasSuffix(host, ".example.test") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

var (
	exampleTestClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: exampleTestDial}}
	exampleTestWS     = &websocket.Dialer{HandshakeTimeout: 30 * time.Second, NetDialContext: exampleTestDial}
)

// approveShownQR has dev scan the QR code the tab shows and approve it,
// signing up with profile when the phone is new.
func approveShownQR(t *testing.T, ctx context.Context, dev *appclient.Device, profile *qrauth.Profile) *wire.ServerMessage {
	t.Helper()
	waitState(t, ctx, "waiting")
	url, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#qr")))
	if err != nil {
		t.Fatal(err)
	}
	scan, err := dev.Scan(ctx, url, appclient.ScanOptions{Dialer: exampleTestWS})
	if err != nil {
		t.Fatal(err)
	}
	defer scan.Close()
	res, err := scan.Approve(ctx, appclient.ApproveOptions{Profile: profile})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// appShows waits until the tab shows the app at appURL's host and returns
// what it says the proxy passed on.
func appShows(t *testing.T, ctx context.Context, host string) map[string]string {
	t.Helper()
	var got map[string]string
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible(`#user`, chromedp.ByQuery),
		chromedp.Poll(`location.host === `+fmt.Sprintf("%q", host), nil),
		chromedp.Evaluate(`({user: document.querySelector('#user').textContent, name: document.querySelector('#name').textContent,
			email: document.querySelector('#email').textContent, groups: document.querySelector('#groups').textContent,
			path: document.querySelector('#path').textContent})`, &got),
	); err != nil {
		var where string
		chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate(`location.href + ' ' + document.title`, &where))
		t.Fatalf("waiting for the app on %s (at %q): %v", host, where, err)
	}
	return got
}

func TestForwardAuthProxies(t *testing.T) {
	for _, proxy := range []string{"nginx", "caddy"} {
		t.Run(proxy, func(t *testing.T) { testForwardAuthProxy(t, proxy) })
	}
}

func testForwardAuthProxy(t *testing.T, proxy string) {
	port := freePort(t)
	login := fmt.Sprintf("http://login.example.test:%d", port)
	appHost := fmt.Sprintf("app.example.test:%d", port)

	m := NewMain()
	if err := m.ParseFlags([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "qrauth.db"),
		"-room-rate", "1000", "-room-burst", "1000", "-origin", login, "-trusted-proxies", "127.0.0.1,::1",
		"-cookie-domain", "example.test", "-forward-auth-domains", "example.test",
		"-forward-auth-rule", "app.example.test=admin,helpdesk"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	m.LogOutput = io.Discard
	if err := m.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	app := remoteApp(t)
	switch proxy {
	case "nginx":
		startNginx(t, port, m.Server.Addr().String(), app)
	case "caddy":
		startCaddy(t, port, m.Server.Addr().String(), app)
	}

	ctx, problems := newChromium(t,
		chromedp.Flag("host-resolver-rules", "MAP *.example.test 127.0.0.1"),
		chromedp.Flag("disable-features", "HttpsUpgrades"))
	newPhone := func(phone string) *appclient.Device {
		dev, err := appclient.Init(ctx, appclient.InitOptions{Server: login, Phone: phone, HTTPClient: exampleTestClient})
		if err != nil {
			t.Fatal(err)
		}
		return dev
	}

	// Ada signs up on qrauth's own page and gets the helpdesk role.
	ada := newPhone("+41 79 100 00 01")
	if err := chromedp.Run(ctx, chromedp.Navigate(login+"/")); err != nil {
		t.Fatal(err)
	}
	res := approveShownQR(t, ctx, ada, &qrauth.Profile{Name: "Ada Lovelace"})
	if res.Result != wire.ResultSignedUp {
		t.Fatalf("sign-up: %+v", res)
	}
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#user-name`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := runAdmin(context.Background(), []string{"-data", m.DataPath, "roles", string(res.UserID), "helpdesk"}, &out, &errOut); code != 0 {
		t.Fatalf("admin roles: %d %s", code, errOut.String())
	}

	// Anonymous: the app's address leads to the login page; Ada's phone
	// approves; the browser is back at the very address, and the app
	// sees Ada.
	if err := chromedp.Run(ctx, network.ClearBrowserCookies()); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, chromedp.Navigate("http://"+appHost+"/reports?year=2024&q=a%2Fb")); err != nil {
		t.Fatal(err)
	}
	var where string
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#login`, chromedp.ByQuery), chromedp.Evaluate(`location.origin + location.pathname`, &where)); err != nil {
		t.Fatal(err)
	}
	if where != login+"/" {
		t.Fatalf("anonymous request: at %s, want the login page", where)
	}
	if res := approveShownQR(t, ctx, ada, nil); res.Result != wire.ResultSignedIn {
		t.Fatalf("sign-in: %+v", res)
	}
	got := appShows(t, ctx, appHost)
	if got["user"] != string(res.UserID) || got["name"] != "Ada Lovelace" || got["groups"] != "helpdesk" || got["email"] != "" ||
		got["path"] != "/reports?year=2024&q=a%2Fb" {
		t.Fatalf("the app saw %v, want Ada (%s) at the original address", got, res.UserID)
	}

	// The proxy sets the Remote-* headers itself: a browser's own never
	// reach the app, neither signed in nor anonymous.
	var session string
	var cookies []*network.Cookie
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) (err error) {
		cookies, err = network.GetCookies().WithURLs([]string{"http://" + appHost + "/"}).Do(ctx)
		return err
	})); err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		if c.Name == "qrauth_session" {
			session = c.Value
			if c.Domain != ".example.test" && c.Domain != "example.test" {
				t.Errorf("session cookie on %q, want example.test", c.Domain)
			}
		}
		if c.Name == "qrauth_bind" {
			t.Errorf("the bind cookie reached the app's host: %+v", c)
		}
	}
	forged := func(cookie string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		req.Host = appHost
		req.Header.Set("Remote-User", "u_forged")
		req.Header.Set("Remote-Email", "boss@example.test")
		req.Header.Set("Remote-Groups", "admin")
		if cookie != "" {
			req.Header.Set("Cookie", "qrauth_session="+cookie)
		}
		resp, err := noRedirectClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := forged(session); resp.StatusCode != 200 || !strings.Contains(body, `id="user">`+string(res.UserID)+`<`) ||
		!strings.Contains(body, `id="email"></span>`) || !strings.Contains(body, `id="groups">helpdesk<`) {
		t.Fatalf("forged headers with Ada's session: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := forged(""); resp.StatusCode != http.StatusFound ||
		!strings.HasPrefix(resp.Header.Get("Location"), login+"/authz/signin?rd=") {
		t.Fatalf("forged headers, anonymous: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Bob signs up from the app's address: back at the app, he is refused
	// with qrauth's page, since he holds neither admin nor helpdesk.
	if err := chromedp.Run(ctx, network.ClearBrowserCookies(), chromedp.Navigate("http://"+appHost+"/")); err != nil {
		t.Fatal(err)
	}
	bob := newPhone("+41 79 100 00 02")
	if res := approveShownQR(t, ctx, bob, &qrauth.Profile{Name: "Bob"}); res.Result != wire.ResultSignedUp {
		t.Fatalf("Bob's sign-up: %+v", res)
	}
	var msg string
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible(`#forward-auth[data-reason="role_required"]`, chromedp.ByQuery),
		chromedp.Poll(`location.host === `+fmt.Sprintf("%q", appHost), nil),
		chromedp.Text("#message", &msg, chromedp.ByQuery),
	); err != nil {
		var where string
		chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate(`location.href + ' ' + document.title`, &where))
		t.Fatalf("Bob's refusal (at %q): %v", where, err)
	}
	if want := "You are signed in as Bob, but app.example.test is open only to users with the role admin or helpdesk."; msg != want {
		t.Fatalf("refusal says %q, want %q", msg, want)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

var noRedirectClient = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestLoginNextStaysOnSite: the login page follows ?next= after signing
// in only to a path on its own site; anything a URL parser would read as
// another site ("//evil", "/<TAB>/evil", an absolute address) ends on the
// account page.
func TestLoginNextStaysOnSite(t *testing.T) {
	m := MustRunMain(t)
	origin := m.Server.Origin()
	ctx, problems := newChromium(t)
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 100 00 03"})
	if err != nil {
		t.Fatal(err)
	}
	for i, next := range []string{"//evil.example/", "/\t/evil.example/", "/\\evil.example/", "https://evil.example/", "javascript:alert(1)"} {
		if err := chromedp.Run(ctx, network.ClearBrowserCookies(), chromedp.Navigate(origin+"/?next="+neturl.QueryEscape(next))); err != nil {
			t.Fatal(err)
		}
		var p *qrauth.Profile
		if i == 0 {
			p = &qrauth.Profile{Name: "Eve"}
		}
		approveShownQR(t, ctx, dev, p)
		var where string
		if err := chromedp.Run(ctx, chromedp.WaitVisible(`#user-name`, chromedp.ByQuery), chromedp.Evaluate(`location.href`, &where)); err != nil {
			t.Fatalf("next %q: %v", next, err)
		}
		if where != origin+"/account" {
			t.Fatalf("next %q: at %s, want the account page", next, where)
		}
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestForwardAuthFlags: bad rules and domains are refused at parse time in
// one line; domains the session cookie cannot reach stop the start.
func TestForwardAuthFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-forward-auth-rule", "app.example.test"}, 2, "want HOST=ROLE"},
		{[]string{"-forward-auth-rule", "app.example.test=root"}, 2, `unknown role "root"`},
		{[]string{"-forward-auth-domains", "example.test:443"}, 2, "want a domain name"},
		{[]string{"-origin", "http://login.example.test", "-cookie-domain", "other.test"}, 1, "must contain the origin's host"},
		{[]string{"-origin", "http://login.example.test", "-forward-auth-domains", "example.test"}, 1, "set -cookie-domain"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "qrauth.db"), "-admin-socket", "off"}, tc.args...)
		code := run(t.Context(), args, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String(), tc.want) || strings.Count(errOut.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, %q; want %d and %q in one line", tc.args, code, errOut.String(), tc.code, tc.want)
		}
	}
}
