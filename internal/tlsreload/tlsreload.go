// Package tlsreload serves a TLS certificate and key from files that may be
// replaced while the server runs (a renewal by certbot, an ACME client, a
// Kubernetes secret), without a restart and without touching connections
// already open: only handshakes that start after a reload see the new pair.
//
// Every handshake compares the files' identity, modification time and size
// with those of the last load (two stat calls, about a microsecond against
// the millisecond of a handshake) and reloads when they differ. That was
// chosen over watching the directory with fsnotify because it needs no
// goroutine or watch to manage, follows symbolic links wherever they point
// (certbot's live/ links, Kubernetes' ..data swap: a directory watch sees
// only the link's directory), and works on network file systems where
// inotify reports nothing. Reload forces a load regardless (SIGHUP), for a
// tool that rewrites a file in place keeping its size and time.
//
// A load that fails (a half-written file, a certificate that does not
// match the key) is logged once as a warning and the previous pair stays in
// service; it is tried again when the files change again.
package tlsreload

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Pair is a certificate and key loaded from two files, reloaded when they
// change. Its methods are safe for concurrent use.
type Pair struct {
	certFile, keyFile string
	log               *slog.Logger

	cur atomic.Pointer[tls.Certificate]

	mu   sync.Mutex
	seen stamp // the files as they were at the last load, good or bad
}

// stamp identifies one version of the two files.
type stamp struct{ cert, key os.FileInfo }

func (s stamp) same(o stamp) bool { return sameVersion(s.cert, o.cert) && sameVersion(s.key, o.key) }

func sameVersion(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// Load reads the pair for the first time: unlike a reload, a failure here
// is an error, since there is no previous certificate to keep serving.
func Load(certFile, keyFile string, log *slog.Logger) (*Pair, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pair{certFile: certFile, keyFile: keyFile, log: log}
	st, err := p.stat()
	if err != nil {
		return nil, err
	}
	cert, err := p.read()
	if err != nil {
		return nil, err
	}
	p.seen = st
	p.cur.Store(cert)
	p.logLoaded(cert, "start")
	return p, nil
}

// GetCertificate is for tls.Config: the current pair, reloaded first if
// the files have changed since the last attempt.
func (p *Pair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	st, err := p.stat()
	p.mu.Lock()
	switch {
	case err != nil:
		// Being replaced or gone: keep serving, say so once.
		if p.seen.cert != nil || p.seen.key != nil {
			p.log.Warn("TLS certificate files unreadable; still serving the previous certificate", slog.Any("err", err))
		}
		p.seen = stamp{}
	case !st.same(p.seen):
		p.load(st, "files changed")
	}
	p.mu.Unlock()
	return p.cur.Load(), nil
}

// Reload loads the files now, whether or not they look changed (SIGHUP).
// On failure the previous pair stays in service and the error says why.
func (p *Pair) Reload() error {
	st, err := p.stat()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.log.Warn("TLS certificate not reloaded; still serving the previous one", slog.String("why", "reload asked"), slog.Any("err", err))
		return err
	}
	return p.load(st, "reload asked")
}

// Current returns the certificate in service.
func (p *Pair) Current() *tls.Certificate { return p.cur.Load() }

// load reads the files, stamped st beforehand: if they change during the
// read, the next handshake sees a newer stamp and loads again, never the
// other way round. The caller holds mu.
func (p *Pair) load(st stamp, why string) error {
	p.seen = st
	cert, err := p.read()
	if err != nil {
		p.log.Warn("TLS certificate not reloaded; still serving the previous one", slog.String("why", why), slog.Any("err", err))
		return err
	}
	p.cur.Store(cert)
	p.logLoaded(cert, why)
	return nil
}

func (p *Pair) stat() (stamp, error) {
	c, err := os.Stat(p.certFile)
	if err != nil {
		return stamp{}, fmt.Errorf("TLS certificate: %w", err)
	}
	k, err := os.Stat(p.keyFile)
	if err != nil {
		return stamp{}, fmt.Errorf("TLS key: %w", err)
	}
	return stamp{c, k}, nil
}

// read parses the pair; tls.X509KeyPair checks that the key is the
// certificate's and fills Leaf.
func (p *Pair) read() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", p.certFile, p.keyFile, err)
	}
	if cert.Leaf == nil {
		return nil, errors.New("TLS certificate: no leaf certificate")
	}
	return &cert, nil
}

// logLoaded says which certificate is now served: names and expiry only,
// never key material.
func (p *Pair) logLoaded(cert *tls.Certificate, why string) {
	l := cert.Leaf
	names := l.DNSNames
	for _, ip := range l.IPAddresses {
		names = append(names, ip.String())
	}
	lvl := slog.LevelInfo
	if time.Now().After(l.NotAfter) {
		lvl = slog.LevelWarn // served all the same: the operator may be mid-renewal
	}
	p.log.Log(context.Background(), lvl, "TLS certificate loaded", slog.String("why", why), slog.String("names", strings.Join(names, ",")),
		slog.Time("not_after", l.NotAfter), slog.String("serial", l.SerialNumber.String()))
}
