package tlsreload_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth/internal/atomicfile"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/internal/tlsreload"
)

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

type fixture struct {
	ca                *testutil.TestCA
	certFile, keyFile string
	log               *logBuffer
	pair              *tlsreload.Pair
}

// newFixture writes leaf 10 and loads it.
func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	f := &fixture{ca: testutil.NewTestCA(t), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), log: &logBuffer{}}
	c, k := f.ca.Leaf(t, 10, "localhost")
	f.replace(t, c, k)
	p, err := tlsreload.Load(f.certFile, f.keyFile, slog.New(slog.NewTextHandler(f.log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.pair = p
	return f
}

// replace renames new files over the old ones, as renewal tools do.
func (f *fixture) replace(t *testing.T, cert, key []byte) {
	t.Helper()
	if cert != nil {
		if err := atomicfile.Write(f.certFile, cert, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if key != nil {
		if err := atomicfile.Write(f.keyFile, key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// served is what the next handshake gets.
func (f *fixture) served(t *testing.T) int64 {
	t.Helper()
	c, err := f.pair.GetCertificate(nil)
	if err != nil || c == nil {
		t.Fatalf("GetCertificate: %v %v", c, err)
	}
	return c.Leaf.SerialNumber.Int64()
}

const notReloaded = "TLS certificate not reloaded"

// TestReloadWhenFilesChange: a renewal that renames the certificate and
// then the key over the old ones is served from the next handshake; in
// between, the mismatched pair is refused with one warning, however many
// handshakes come, and the old pair stays in service.
func TestReloadWhenFilesChange(t *testing.T) {
	f := newFixture(t)
	if s := f.served(t); s != 10 {
		t.Fatalf("serial %d", s)
	}
	c, k := f.ca.Leaf(t, 11, "localhost")
	f.replace(t, c, nil)
	for range 5 {
		if s := f.served(t); s != 10 {
			t.Fatalf("half-replaced pair: serial %d", s)
		}
	}
	if n := f.log.count(notReloaded); n != 1 {
		t.Fatalf("%d warnings for one bad version of the files:\n%s", n, f.log.buf.String())
	}
	f.replace(t, nil, k)
	if s := f.served(t); s != 11 {
		t.Fatalf("after the key: serial %d", s)
	}
	if body := string(k[40:80]); f.log.count(body) != 0 || f.log.count("PRIVATE KEY") != 0 {
		t.Fatal("key material in the log")
	}
}

// TestBrokenFilesKeepTheOldPair: a file cut short, emptied or removed
// leaves the previous certificate in service, with a warning; the fixed
// files are picked up without anyone asking.
func TestBrokenFilesKeepTheOldPair(t *testing.T) {
	f := newFixture(t)
	c, k := f.ca.Leaf(t, 12, "localhost")
	for i, broken := range [][]byte{c[:len(c)/2], {}, []byte("not PEM")} {
		f.replace(t, broken, k)
		if s := f.served(t); s != 10 {
			t.Fatalf("broken file %d: serial %d", i, s)
		}
		if n := f.log.count(notReloaded); n != i+1 {
			t.Fatalf("broken file %d: %d warnings", i, n)
		}
	}
	if err := os.Remove(f.certFile); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if s := f.served(t); s != 10 {
			t.Fatalf("missing file: serial %d", s)
		}
	}
	if n := f.log.count("unreadable"); n != 1 {
		t.Fatalf("%d warnings for a missing file", n)
	}
	f.replace(t, c, nil)
	if s := f.served(t); s != 12 {
		t.Fatalf("fixed: serial %d", s)
	}
}

// TestReloadForced: a rewrite in place that keeps the file's size and
// time is invisible to the per-handshake check; Reload (SIGHUP) loads it.
// A forced reload of a bad pair fails and keeps the old one.
func TestReloadForced(t *testing.T) {
	f := newFixture(t)
	c, k := f.ca.Leaf(t, 13, "localhost")
	testutil.RewriteUnnoticed(t, f.certFile, c)
	testutil.RewriteUnnoticed(t, f.keyFile, k)
	if s := f.served(t); s != 10 {
		t.Fatalf("before Reload: serial %d (the check saw an invisible change?)", s)
	}
	if err := f.pair.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := f.served(t); s != 13 {
		t.Fatalf("after Reload: serial %d", s)
	}
	_, otherKey := f.ca.Leaf(t, 14, "localhost")
	f.replace(t, nil, otherKey)
	if err := f.pair.Reload(); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Fatalf("mismatched pair: %v", err)
	}
	if s := f.pair.Current().Leaf.SerialNumber.Int64(); s != 13 {
		t.Fatalf("after a failed Reload: serial %d", s)
	}
}

// TestLoadRefusesABadPair: at start there is nothing to fall back on.
func TestLoadRefusesABadPair(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewTestCA(t)
	c, _ := ca.Leaf(t, 10, "localhost")
	_, k := ca.Leaf(t, 11, "localhost")
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(cert, c, 0o600)
	if _, err := tlsreload.Load(cert, key, nil); err == nil || !strings.Contains(err.Error(), "TLS key") {
		t.Fatalf("missing key: %v", err)
	}
	os.WriteFile(key, k, 0o600)
	if _, err := tlsreload.Load(cert, key, nil); err == nil || !strings.Contains(err.Error(), cert) {
		t.Fatalf("mismatched pair: %v", err)
	}
}

// TestConcurrentHandshakes runs handshakes while the files are replaced
// (for -race): every handshake gets a whole pair, and the last one wins.
func TestConcurrentHandshakes(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c, err := f.pair.GetCertificate(nil); err != nil || c == nil || c.Leaf == nil {
					t.Errorf("GetCertificate: %v %v", c, err)
					return
				}
			}
		}()
	}
	for i := range int64(10) {
		c, k := f.ca.Leaf(t, 20+i, "localhost")
		f.replace(t, c, k)
	}
	close(stop)
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for f.served(t) != 29 {
		if time.Now().After(deadline) {
			t.Fatal("the last pair never served")
		}
	}
}
