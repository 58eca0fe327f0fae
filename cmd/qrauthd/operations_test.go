package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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

// The tests of docs/operations.md: its nginx and Caddy configs, run by
// Debian's real proxies with TLS in front of a real qrauthd, carry a whole
// sign-in of headless Chromium and a phone; its flag list is the real one.

const operationsDoc = "../../docs/operations.md"

// operationsBlock returns the fenced block that follows the marker
// <!-- tested: name --> in docs/operations.md.
func operationsBlock(t *testing.T, name string) string {
	t.Helper()
	return testutil.TestedBlock(t, operationsDoc, name)
}

// selfSignedCert writes a certificate for host and its key into a
// temporary directory and returns their paths and a pool that trusts it.
func selfSignedCert(t *testing.T, host string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// phoneDial dials *.example.test at 127.0.0.1 from the source address
// 127.0.0.2, so that the address qrauthd reports for the phone tells
// whether it took it from the proxy's X-Forwarded-For (127.0.0.2) or from
// the connection (the proxy, 127.0.0.1).
func phoneDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && strings.HasSuffix(host, ".example.test") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	return d.DialContext(ctx, network, addr)
}

func TestOperationsProxies(t *testing.T) {
	for _, proxy := range []string{"nginx", "caddy"} {
		t.Run(proxy, func(t *testing.T) { testOperationsProxy(t, proxy) })
	}
}

func testOperationsProxy(t *testing.T, proxy string) {
	port := freePort(t)
	origin := fmt.Sprintf("https://login.example.test:%d", port)
	m := MustRunMain(t, "-origin", origin, "-trusted-proxies", "127.0.0.1/32,::1/128")
	addr := m.Server.Addr().String()

	var roots *x509.CertPool
	switch proxy {
	case "nginx":
		conf := operationsBlock(t, "nginx")
		// Longer than qrauthd's 60 s pong wait, or waiting pages drop.
		if m := regexp.MustCompile(`proxy_read_timeout (\d+)s;`).FindStringSubmatch(conf); m == nil {
			t.Fatal("the nginx block sets no proxy_read_timeout")
		} else if n, _ := strconv.Atoi(m[1]); n <= 60 {
			t.Fatalf("proxy_read_timeout %ds: not longer than qrauthd's 60 s between pongs", n)
		}
		cert, key, pool := selfSignedCert(t, "login.example.test")
		roots = pool
		runNginx(t, testutil.Substitute(t, conf,
			"/etc/letsencrypt/live/login.example.com/fullchain.pem", cert,
			"/etc/letsencrypt/live/login.example.com/privkey.pem", key,
			"login.example.com", "login.example.test",
			"listen 443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", port),
			"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", freePort(t)),
			"127.0.0.1:8080", addr))
	case "caddy":
		// Caddy's own local CA stands in for the public one; no
		// redirect listener on port 80.
		storage := runCaddy(t, "local_certs\n\tskip_install_trust\n\tauto_https disable_redirects", "certificate obtained successfully",
			testutil.Substitute(t, operationsBlock(t, "caddy"),
				"login.example.com {", fmt.Sprintf("https://login.example.test:%d {", port),
				"127.0.0.1:8080", addr))
		pem, err := os.ReadFile(filepath.Join(storage, "pki", "authorities", "local", "root.crt"))
		if err != nil {
			t.Fatal(err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			t.Fatal("Caddy's root certificate does not parse")
		}
	}
	tlsConf := &tls.Config{RootCAs: roots}
	phoneHTTP := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: phoneDial, TLSClientConfig: tlsConf}}
	phoneWS := &websocket.Dialer{HandshakeTimeout: 30 * time.Second, NetDialContext: phoneDial, TLSClientConfig: tlsConf}

	// Chromium cannot be handed the test's CA; it skips the certificate
	// check, the phone makes it.
	ctx, problems := newChromium(t,
		chromedp.Flag("host-resolver-rules", "MAP *.example.test 127.0.0.1"),
		chromedp.Flag("ignore-certificate-errors", true))
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 300 00 01", HTTPClient: phoneHTTP})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{wire.ResultSignedUp, wire.ResultSignedIn} {
		// The login page loads through the proxy and its socket upgrades
		// through it: the QR code arrives over that socket.
		if err := chromedp.Run(ctx, network.ClearBrowserCookies(), chromedp.Navigate(origin+"/")); err != nil {
			t.Fatal(err)
		}
		waitState(t, ctx, "waiting")
		url, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#qr")))
		if err != nil {
			t.Fatal(err)
		}
		scan, err := dev.Scan(ctx, url, appclient.ScanOptions{Dialer: phoneWS})
		if err != nil {
			t.Fatal(err)
		}
		// X-Forwarded-For reached qrauthd: it knows the phone's own
		// address, not the proxy's.
		if c := scan.Challenge; c.Proximity == nil || c.Proximity.AppIP != "127.0.0.2" || c.Context == nil || c.Context.IP != "127.0.0.1" {
			t.Errorf("challenge context %+v, proximity %+v: want the browser at 127.0.0.1 and the phone at 127.0.0.2", c.Context, c.Proximity)
		}
		var p *qrauth.Profile
		if i == 0 {
			p = &qrauth.Profile{Name: "Operations Test"}
		}
		res, err := scan.Approve(ctx, appclient.ApproveOptions{Profile: p})
		scan.Close()
		if err != nil || res.Result != want {
			t.Fatalf("approve: %+v %v; want %s", res, err, want)
		}
		var where string
		if err := chromedp.Run(ctx, chromedp.WaitVisible(`#user-name`, chromedp.ByQuery), chromedp.Evaluate(`location.href`, &where)); err != nil {
			t.Fatal(err)
		}
		if where != origin+"/account" {
			t.Fatalf("after %s the browser is at %s, want the account page", want, where)
		}
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestOperationsFlags: the flag list of docs/operations.md names every
// flag of qrauthd, and nothing that is not one.
func TestOperationsFlags(t *testing.T) {
	b, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Every flag\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "## Every flag" section`)
	}
	sec, _, _ = strings.Cut(sec, "\nCommands:")
	sec, _, _ = strings.Cut(sec, "\n## ")
	listed := map[string]bool{}
	for _, m := range docFlagRe.FindAllStringSubmatch(sec, -1) {
		listed[m[1]] = true
	}
	fs, _ := NewMain().flagSet()
	fs.VisitAll(func(f *flag.Flag) {
		if !listed[f.Name] {
			t.Errorf("-%s is missing from docs/operations.md's flag list", f.Name)
		}
		delete(listed, f.Name)
	})
	for name := range listed {
		t.Errorf("docs/operations.md lists -%s, which is not a flag", name)
	}
}
