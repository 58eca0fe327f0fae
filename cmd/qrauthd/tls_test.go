package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth/internal/atomicfile"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/wire"
)

// writePair puts a certificate and key into dir/cert.pem and dir/key.pem
// the way renewal tools do (a new file renamed over the old) and returns
// the paths.
func writePair(t *testing.T, dir string, cert, key []byte) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := atomicfile.Write(certFile, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// waitServed handshakes with addr until it presents the certificate with
// serial want, within a deadline; every try is a new TLS connection.
func waitServed(t *testing.T, addr string, roots *x509.CertPool, want int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var got int64
	var err error
	for time.Now().Before(deadline) {
		if got, err = testutil.ServedSerial(addr, "", roots); err == nil && got == want {
			return
		}
	}
	t.Fatalf("%s never presented serial %d: last %d, %v", addr, want, got, err)
}

// connSerial is the serial of the certificate an open socket was set up
// with.
func connSerial(ws *websocket.Conn) int64 {
	return ws.UnderlyingConn().(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestTLSCertificateReplacedWhileServing: qrauthd serves cert A; a browser
// socket is open over it; a renewal renames cert B and its key over the
// files. New handshakes get B without a restart, and the socket opened
// over A still answers a ping.
func TestTLSCertificateReplacedWhileServing(t *testing.T) {
	ca := testutil.NewTestCA(t)
	dir := t.TempDir()
	certA, keyA := ca.Leaf(t, 10, "127.0.0.1")
	certFile, keyFile := writePair(t, dir, certA, keyA)
	m := MustRunMain(t, "-tls-cert", certFile, "-tls-key", keyFile)
	origin, addr := m.Server.Origin(), m.Server.Addr().String()
	if !strings.HasPrefix(origin, "https://") {
		t.Fatalf("origin %s", origin)
	}
	tlsConf := &tls.Config{RootCAs: ca.Pool()}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}, Timeout: 10 * time.Second}
	dialer := &websocket.Dialer{TLSClientConfig: tlsConf, HandshakeTimeout: 10 * time.Second}

	h := http.Header{"Origin": {origin}, "Cookie": {"qrauth_bind=" + issuedBindVia(t, client, origin)}}
	ws, _, err := dialer.Dial("wss://"+addr+wire.PathBrowserSocket, h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var qr wire.ServerMessage
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.ReadJSON(&qr); err != nil || qr.Type != wire.MsgQR {
		t.Fatalf("first frame %+v %v", qr, err)
	}
	if s := connSerial(ws); s != 10 {
		t.Fatalf("socket set up with serial %d", s)
	}

	certB, keyB := ca.Leaf(t, 11, "127.0.0.1")
	writePair(t, dir, certB, keyB)
	waitServed(t, addr, ca.Pool(), 11)

	// The old socket: still the connection set up with A, and alive.
	pong := make(chan struct{}, 1)
	ws.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	go func() {
		for { // gorilla runs the pong handler inside reads
			if _, _, err := ws.NextReader(); err != nil {
				return
			}
		}
	}()
	if err := ws.WriteControl(websocket.PingMessage, []byte("still there?"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("ping over the old socket: %v", err)
	}
	select {
	case <-pong:
	case <-time.After(10 * time.Second):
		t.Fatal("no pong over the socket opened before the reload")
	}
	if s := connSerial(ws); s != 10 {
		t.Fatalf("old socket now reports serial %d", s)
	}

	// A new browser socket is set up with B.
	ws2, _, err := dialer.Dial("wss://"+addr+wire.PathBrowserSocket, h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.Close()
	if s := connSerial(ws2); s != 11 {
		t.Fatalf("new socket set up with serial %d", s)
	}
}

// TestBadTLSPairRefusedAtStart: a key that is not the certificate's stops
// the start with the files named, instead of failing every handshake.
func TestBadTLSPairRefusedAtStart(t *testing.T) {
	ca := testutil.NewTestCA(t)
	c, _ := ca.Leaf(t, 10, "127.0.0.1")
	_, k := ca.Leaf(t, 11, "127.0.0.1")
	certFile, keyFile := writePair(t, t.TempDir(), c, k)
	m := NewMain()
	if err := m.ParseFlags([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "qrauth.db"),
		"-tls-cert", certFile, "-tls-key", keyFile}, nil); err != nil {
		t.Fatal(err)
	}
	m.LogOutput = &strings.Builder{}
	err := m.Run()
	if err == nil {
		m.Close()
		t.Fatal("started with a mismatched pair")
	}
	if !strings.Contains(err.Error(), certFile) || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("error %v", err)
	}
}

// TestSIGHUPReloadsTLS runs the whole program in this process and sends
// it SIGHUP. The files are rewritten in place keeping their identity, size
// and time, which the per-handshake check cannot see: only the signal can
// make the new certificate served.
func TestSIGHUPReloadsTLS(t *testing.T) {
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ca := testutil.NewTestCA(t)
	dir := t.TempDir()
	certA, keyA := ca.Leaf(t, 10, "127.0.0.1")
	certFile, keyFile := writePair(t, dir, certA, keyA)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))

	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	var stderr strings.Builder // written by run only after ctx ends
	go func() {
		exited <- run(ctx, []string{"-addr", addr, "-data", filepath.Join(t.TempDir(), "qrauth.db"),
			"-tls-cert", certFile, "-tls-key", keyFile, "-admin-socket", "off", "-log-level", "error"}, &strings.Builder{}, &stderr)
	}()
	defer func() {
		cancel()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("run exited %d: %s", code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("run did not return after its context ended")
		}
	}()
	// Serving means run has set up its SIGHUP handler (before listening).
	waitServed(t, addr, ca.Pool(), 10)

	certB, keyB := ca.Leaf(t, 11, "127.0.0.1")
	testutil.RewriteUnnoticed(t, certFile, certB)
	testutil.RewriteUnnoticed(t, keyFile, keyB)
	if s, err := testutil.ServedSerial(addr, "", ca.Pool()); err != nil || s != 10 {
		t.Fatalf("before SIGHUP: serial %d, %v (an unnoticed change was noticed?)", s, err)
	}
	if err := self.Signal(syscall.SIGHUP); err != nil {
		t.Skipf("cannot send SIGHUP here: %v", err)
	}
	waitServed(t, addr, ca.Pool(), 11)
}
