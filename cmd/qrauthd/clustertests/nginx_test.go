package clustertests

// The nginx example of docs/cluster.md, run by Debian's real nginx with TLS
// in front of two real qrauthd processes: the browser and the phone reach
// the cluster only through it.

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/internal/clustertest"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/wire"
)

// nginxHit is one line of nginx's access log: the status, the upstream
// addresses tried (", " between them) and the request.
type nginxHit struct{ status, upstream, request string }

// frontNginx is nginx running the documented config in front of a
// cluster, as an instance of the harness: its URL is https, its clients
// (Client, Dialer) trust the test's CA and reach its port whatever the
// URL's host.
type frontNginx struct {
	*clustertest.Instance
	accessLog string
}

// startNginx runs nginx on addr with the upstream and server blocks of
// docs/cluster.md (and the map block of docs/operations.md, as the former
// says), upstreamFirst (if not empty) added as the first line of the
// upstream block, and
// an access log of the upstreams it chose; it is ready when /readyz
// answers 200 through it.
func startNginx(t *testing.T, c *cluster, addr string, ca *testutil.TestCA, upstreamFirst string) *frontNginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx is not installed: this test runs the real proxy (apt-get install -y nginx; .ci/run does it; PATH needs /usr/sbin)")
	}
	dir := t.TempDir()
	certPEM, keyPEM := ca.Leaf(t, 10, "login.example.test", "127.0.0.1")
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	mapBlock := regexp.MustCompile(`(?s)map \$http_upgrade \$connection_upgrade \{.*?\n\}`).FindString(testutil.TestedBlock(t, "../../../docs/operations.md", "nginx"))
	if mapBlock == "" {
		t.Fatal("docs/operations.md's nginx block has no map $http_upgrade $connection_upgrade block")
	}
	conf := testutil.TestedBlock(t, "../../../docs/cluster.md", "nginx")
	if upstreamFirst != "" {
		conf = testutil.Substitute(t, conf, "upstream qrauth {\n", "upstream qrauth {\n    "+upstreamFirst+"\n")
	}
	conf = testutil.Substitute(t, conf,
		"10.0.0.11:8080", c.a.Addr,
		"10.0.0.12:8080", c.b.Addr,
		"listen 443 ssl http2;", "listen "+addr+" ssl http2;",
		"/etc/letsencrypt/live/login.example.com/fullchain.pem", cert,
		"/etc/letsencrypt/live/login.example.com/privkey.pem", key,
		"server_name login.example.com;", "server_name login.example.test;")
	accessLog := filepath.Join(dir, "access.log")
	full := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
    log_format upstreams '$status|$upstream_addr|$request_method $uri';
    access_log %[2]s upstreams;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[3]s

%[4]s
}
`, dir, accessLog, mapBlock, conf)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	ng := clustertest.New(t, clustertest.Options{Name: "nginx", Binary: bin, Addr: addr,
		Args: []string{"-p", dir, "-c", confFile}, TLS: &tls.Config{RootCAs: ca.Pool()}})
	// SIGTERM, before the harness's SIGKILL: the master then waits for
	// its worker, which SIGKILL would leave behind.
	t.Cleanup(func() { ng.Stop(10 * time.Second) })
	if err := ng.Start(); err != nil {
		t.Fatalf("%v\nconfig:\n%s", err, full)
	}
	return &frontNginx{Instance: ng, accessLog: accessLog}
}

// hits is the access log so far, without the readiness polls. A request
// is logged once it has been answered (a socket once it has ended), so
// the log may lag the client by a moment.
func (n *frontNginx) hits(t *testing.T) []nginxHit {
	t.Helper()
	b, err := os.ReadFile(n.accessLog)
	if err != nil {
		t.Fatal(err)
	}
	var hits []nginxHit
	// Complete lines only: nginx writes each with one write, after it
	// has answered.
	lines := strings.Split(string(b), "\n")
	for _, l := range lines[:len(lines)-1] {
		f := strings.SplitN(l, "|", 3)
		if len(f) != 3 {
			t.Fatalf("access log line %q", l)
		}
		if f[2] != "GET /readyz" {
			hits = append(hits, nginxHit{f[0], f[1], f[2]})
		}
	}
	return hits
}

// sockets waits until the access log after the first skip lines shows
// the browser's and the phone's socket (each logged when it ends) and
// returns the instances that served them.
func (n *frontNginx) sockets(t *testing.T, c *cluster, skip int) (browser, phone string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, h := range n.hits(t)[skip:] {
			switch h.request {
			case "GET " + wire.PathBrowserSocket:
				browser = c.served(h)
			case "GET " + wire.PathAppSocket:
				phone = c.served(h)
			}
		}
		if browser != "" && phone != "" {
			return browser, phone
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx logged no browser or phone socket within 10 s: %+v", n.hits(t)[skip:])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// served is the instance (A or B) that answered h: the last upstream
// tried.
func (c *cluster) served(h nginxHit) string {
	addrs := strings.Split(h.upstream, ", ")
	switch addrs[len(addrs)-1] {
	case c.a.Addr:
		return "A"
	case c.b.Addr:
		return "B"
	}
	return "?"
}

// phoneVia is a phone's HTTP client and WebSocket dialer that connect to
// addr from the source address from, trusting ca.
func phoneVia(addr string, from net.IP, ca *testutil.TestCA) (*http.Client, *websocket.Dialer) {
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}}
		return d.DialContext(ctx, network, addr)
	}
	conf := &tls.Config{RootCAs: ca.Pool()}
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: dial, TLSClientConfig: conf}},
		&websocket.Dialer{NetDialContext: dial, TLSClientConfig: conf, HandshakeTimeout: 10 * time.Second}
}

// signInVia is a whole QR sign-in (sign-up with a profile) through ng:
// the browser (from 127.0.0.1) and the phone (dev, with phoneWS from
// phoneIP) reach the cluster only through nginx; with favicon the browser
// fetches /favicon.ico once its socket is open, before the phone scans. It
// returns the user's id.
func (c *cluster) signInVia(ng *frontNginx, dev *appclient.Device, phoneWS *websocket.Dialer, phoneIP string, profile *qrauth.Profile, favicon bool) string {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	br := c.browser(ng.Instance)
	qr := br.open(ng.Instance, "")
	if favicon {
		if st, _ := br.do(ng.Instance, "GET", wire.PathFavicon, ""); st != 200 {
			t.Fatalf("favicon through nginx: %d", st)
		}
	}
	s, err := dev.Scan(ctx, qr.URL, appclient.ScanOptions{Dialer: phoneWS})
	if err != nil {
		t.Fatalf("scan through nginx: %v", err)
	}
	defer s.Close()
	// X-Forwarded-For reached the instances, which trust nginx: they
	// know each side's own address, not nginx's.
	if ch := s.Challenge; ch.Context == nil || ch.Context.IP != "127.0.0.1" || ch.Proximity == nil || ch.Proximity.AppIP != phoneIP {
		t.Errorf("challenge context %+v, proximity %+v: want the browser at 127.0.0.1 and the phone at %s", ch.Context, ch.Proximity, phoneIP)
	}
	want := wire.ResultSignedIn
	if profile != nil {
		want = wire.ResultSignedUp
	}
	mustApprove(t, s, profile, want)
	if st, body := br.exchange(ng.Instance, br.approved()); st != 200 {
		t.Fatalf("exchange through nginx: %d %v", st, body)
	}
	st, id := br.me(ng.Instance)
	if st != 200 || id == "" {
		t.Fatalf("me through nginx: %d %q", st, id)
	}
	br.ws.Close()
	return id
}

// TestClusterBehindNginx: the nginx example of docs/cluster.md in front of
// two instances on one Redis and one PostgreSQL, -origin nginx's URL and
// -trusted-proxies nginx's address. First with the optional
// `hash $remote_addr consistent;`: a browser and a phone on one address
// sign up and sign in, every request on one instance. Then the config as
// documented: a phone on another address signs in, both instances serve
// the requests; one instance stopped, the next sign-in works through
// nginx, which retries on the other what the stopped one refused.
func TestClusterBehindNginx(t *testing.T) {
	t.Parallel()
	addr := clustertest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	origin := "https://login.example.test:" + port
	c := startCluster(t, clusterOpts{origin: origin, args: []string{"-trusted-proxies", "127.0.0.1/32"}})
	ca := testutil.NewTestCA(t)

	// One Wi-Fi: browser and phone from 127.0.0.1, nginx hashing the
	// client address.
	hashed := startNginx(t, c, addr, ca, "hash $remote_addr consistent;")
	phoneHTTP, phoneWS := phoneVia(addr, net.IPv4(127, 0, 0, 1), ca)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 555 14 40", Name: "Pixel 8", HTTPClient: phoneHTTP})
	if err != nil {
		t.Fatal(err)
	}
	uid := c.signInVia(hashed, dev, phoneWS, "127.0.0.1", &qrauth.Profile{Name: "Nginx Test"}, false)
	if id := c.signInVia(hashed, dev, phoneWS, "127.0.0.1", nil, true); id != uid {
		t.Fatalf("sign-in as %q, signed up as %q", id, uid)
	}
	// Stopped, nginx has logged every request.
	if err := hashed.Stop(10 * time.Second); err != nil {
		t.Fatalf("nginx with hash: %v", err)
	}
	on := map[string]int{}
	for _, h := range hashed.hits(t) {
		on[c.served(h)]++
	}
	if len(on) != 1 || on["?"] > 0 {
		t.Fatalf("with hash $remote_addr, requests from one address went to %v, want one instance", on)
	}

	// As documented, round robin; the phone on another address. Which
	// instance each request reaches follows from the order of the
	// requests: if the browser's and the phone's sockets met on one
	// instance, the browser's fetching its icon between the two parts
	// them on the next sign-in, so that the room spans both instances.
	ng := startNginx(t, c, addr, ca, "")
	phoneHTTP, phoneWS = phoneVia(addr, net.IPv4(127, 0, 0, 2), ca)
	dev.HTTPClient = phoneHTTP
	spanned := false
	for _, favicon := range []bool{false, true} {
		skip := len(ng.hits(t))
		if id := c.signInVia(ng, dev, phoneWS, "127.0.0.2", nil, favicon); id != uid {
			t.Fatalf("sign-in as %q, signed up as %q", id, uid)
		}
		browser, phone := ng.sockets(t, c, skip)
		t.Logf("favicon %v: browser socket on %s, phone socket on %s", favicon, browser, phone)
		if browser != phone {
			spanned = true
			break
		}
	}
	if !spanned {
		t.Errorf("through nginx, the browser's and the phone's sockets were always on one instance")
	}
	hits := ng.hits(t)
	on = map[string]int{}
	var seq []string
	for _, h := range hits {
		on[c.served(h)]++
		seq = append(seq, h.request+" → "+c.served(h))
	}
	t.Logf("requests through nginx:\n%s", strings.Join(seq, "\n"))
	if on["A"] == 0 || on["B"] == 0 || on["?"] > 0 {
		t.Fatalf("requests served: %v, want both instances", on)
	}

	// A stopped: the next sign-in still works through nginx.
	if err := c.a.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop A: %v", err)
	}
	if id := c.signInVia(ng, dev, phoneWS, "127.0.0.2", nil, false); id != uid {
		t.Fatalf("sign-in with A stopped as %q, signed up as %q", id, uid)
	}
	if browser, phone := ng.sockets(t, c, len(hits)); browser != "B" || phone != "B" {
		t.Errorf("with A stopped, the browser's socket was on %s and the phone's on %s", browser, phone)
	}
	retried := 0
	for _, h := range ng.hits(t)[len(hits):] {
		switch {
		case h.upstream == c.a.Addr+", "+c.b.Addr:
			retried++
		case c.served(h) == "A" && h.status != "101":
			// Only a socket of before, ending, was A's alone.
			t.Errorf("with A stopped, %s went to A: %s %s", h.request, h.status, h.upstream)
		}
		if h.status == "502" || h.status == "504" {
			t.Errorf("with A stopped, %s: %s %s", h.request, h.status, h.upstream)
		}
	}
	t.Logf("with A stopped: %+v", ng.hits(t)[len(hits):])
	if retried == 0 {
		t.Errorf("with A stopped, no request was retried from A on B:\n%+v", ng.hits(t)[len(hits):])
	}
}
