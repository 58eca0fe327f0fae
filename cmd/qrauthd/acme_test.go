package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth/internal/testutil"
)

// needPebble skips where the pebble ACME test server is not installed,
// but not in CI, whose .ci/run installs it.
func needPebble(t *testing.T) {
	t.Helper()
	for _, name := range []string{"pebble", "pebble-challtestsrv"} {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not on the PATH: apt-get install pebble", name)
			}
			t.Skipf("%s not installed (apt-get install pebble); skipping the ACME test", name)
		}
	}
}

// TestACMEObtainsAndServesCertificate runs the pebble ACME server and
// its fake DNS on loopback ports and qrauthd with -acme-domain
// qrauth.test. The first handshake for qrauth.test makes qrauthd order a
// certificate; pebble really validates it: its DNS (pebble-challtestsrv)
// answers 127.0.0.1 for every name and its tlsPort is qrauthd's port, so
// the TLS-ALPN-01 challenge is answered by qrauthd's own listener. (The
// other choice, PEBBLE_VA_ALWAYS_VALID, would pass with the challenge
// responder broken.) The certificate served must verify for qrauth.test
// against the root pebble issued from, and be kept in the cache directory.
func TestACMEObtainsAndServesCertificate(t *testing.T) {
	needPebble(t)
	dir := t.TempDir()
	pebblePort, dnsPort := freePort(t), freePort(t)
	pebbleMgmt, dnsMgmt := freePort(t), freePort(t)

	// Pebble serves its API over TLS with a certificate of ours; the ACME
	// client of qrauthd trusts it through Main.ACME.HTTPClient.
	apiCA := testutil.NewTestCA(t)
	apiCert, apiKey := apiCA.Leaf(t, 10, "127.0.0.1", "localhost")
	certFile, keyFile := writePair(t, dir, apiCert, apiKey)
	apiClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: apiCA.Pool()}}, Timeout: 30 * time.Second}

	cache := filepath.Join(dir, "acme")
	m := NewMain()
	if err := m.ParseFlags([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(dir, "qrauth.db"),
		"-acme-domain", "qrauth.test", "-acme-cache", cache, "-acme-email", "ops@qrauth.test",
		"-acme-directory", "https://127.0.0.1:" + strconv.Itoa(pebblePort) + "/dir"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	m.ACME.HTTPClient = apiClient
	m.LogOutput = io.Discard
	if err := m.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	qrauthAddr := m.Server.Addr().String()
	_, qrauthPort, _ := net.SplitHostPort(qrauthAddr)
	if o := m.Server.Origin(); o != "https://127.0.0.1:"+qrauthPort {
		t.Errorf("origin %s", o)
	}

	config, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":           "127.0.0.1:" + strconv.Itoa(pebblePort),
		"managementListenAddress": "127.0.0.1:" + strconv.Itoa(pebbleMgmt),
		"certificate":             certFile, "privateKey": keyFile,
		"httpPort": freePort(t), "tlsPort": m.Server.Addr().(*net.TCPAddr).Port,
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
	}})
	configFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(configFile, config, 0o600); err != nil {
		t.Fatal(err)
	}
	startProxy(t, dir, "Starting management server", nil, "pebble-challtestsrv",
		"-dns01", "127.0.0.1:"+strconv.Itoa(dnsPort), "-management", "127.0.0.1:"+strconv.Itoa(dnsMgmt),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv6", "")
	// No sleeping between validation tries, no nonces refused at random:
	// the run is as fast and as repeatable as pebble allows.
	startProxy(t, dir, "ACME directory available", []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"},
		"pebble", "-config", configFile, "-dnsserver", "127.0.0.1:"+strconv.Itoa(dnsPort))

	// The first handshake for the name blocks while qrauthd gets the
	// certificate: ordering, pebble's TLS-ALPN-01 check against qrauthd's
	// listener, issuance (about a second here).
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 90 * time.Second}, // covers the handshake too
		Config: &tls.Config{ServerName: "qrauth.test", InsecureSkipVerify: true}}
	conn, err := d.Dial("tcp", qrauthAddr)
	if err != nil {
		t.Fatalf("handshake for qrauth.test: %v", err)
	}
	conn.Close()

	// The root pebble issues from, from its management interface.
	resp, err := apiClient.Get("https://127.0.0.1:" + strconv.Itoa(pebbleMgmt) + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's root: %q", rootPEM)
	}
	verified, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", qrauthAddr, &tls.Config{ServerName: "qrauth.test", RootCAs: roots})
	if err != nil {
		t.Fatalf("served certificate does not verify against pebble's root: %v", err)
	}
	leaf := verified.ConnectionState().PeerCertificates[0]
	verified.Close()
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "qrauth.test" {
		t.Errorf("certificate names %v", leaf.DNSNames)
	}

	// A name outside -acme-domain gets no certificate and costs the CA
	// nothing.
	if c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", qrauthAddr,
		&tls.Config{ServerName: "other.test", InsecureSkipVerify: true}); err == nil {
		c.Close()
		t.Error("handshake for a name not in -acme-domain succeeded")
	}

	// What an operator backs up: the account key and the certificate.
	for _, name := range []string{"acme_account+key", "qrauth.test"} {
		if fi, err := os.Stat(filepath.Join(cache, name)); err != nil || fi.Size() == 0 {
			t.Errorf("cache %s: %v", name, err)
		}
	}
	if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory: %v %v", fi.Mode(), err)
	}
}

func TestACMEDefaultOrigin(t *testing.T) {
	for addr, want := range map[string]string{
		":443": "https://login.example.com", "0.0.0.0:8443": "https://login.example.com:8443", "127.0.0.1:0": "",
	} {
		if got := acmeOrigin("login.example.com", addr); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}

// TestACMEFlags: names are checked at start, and ACME excludes -tls-cert.
func TestACMEFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-acme-domain", "login.example.com", "-tls-cert", "c.pem", "-tls-key", "k.pem"}, "not both"},
		{[]string{"-acme-domain", "https://login.example.com"}, `"https://login.example.com" is not a domain name`},
		{[]string{"-acme-domain", "*.example.com"}, "not a domain name"},
		{[]string{"-acme-domain", "192.0.2.1"}, "not a domain name"},
		{[]string{"-acme-domain", "login.example.com", "-acme-directory", "http://ca.example/dir"}, "https://"},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, %q", c.args, code, errOut)
		}
	}
	m := NewMain()
	if err := m.ParseFlags([]string{"-acme-domain", "Login.Example.com, bücher.example"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.ACME.Domains, ","); got != "login.example.com,xn--bcher-kva.example" {
		t.Errorf("domains %s", got)
	}
	t.Setenv("QRAUTH_ACME_DOMAIN", "not a name")
	if code, _, errOut := runCLI(t); code != 2 || !strings.Contains(errOut, "QRAUTH_ACME_DOMAIN") {
		t.Errorf("environment: exit %d, %q", code, errOut)
	}
}
