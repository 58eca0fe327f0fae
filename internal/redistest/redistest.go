// Package redistest starts a throw-away redis-server for tests: bound to
// 127.0.0.1 on a free port, persisting nothing (no RDB, no AOF), its working
// directory a temporary one removed when it stops. Nothing of the machine's
// own Redis service is used or touched.
//
// Stop and Restart let a test take the server away and bring it back on
// the same address, to see clients fail and then recover.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Server is a running (or stopped, between Stop and Restart) redis-server.
type Server struct {
	// Addr is host:port; URL is redis://Addr/0.
	Addr string
	URL  string
	// TLSURL is rediss://127.0.0.1:port/0 for a server from StartTLS
	// (which serves plain TCP on Addr too); empty otherwise.
	TLSURL string

	bin     string
	dir     string
	port    int
	tlsArgs []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// startWait bounds how long a start may take before it counts as failed.
const startWait = 20 * time.Second

// binary finds redis-server on the PATH, then in /usr/bin and /usr/sbin
// (a non-login shell's PATH may lack the latter).
func binary() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("redis-server not found on the PATH nor in /usr/bin (apt-get install redis-server)")
}

// Available reports why redis-server cannot be started here, or nil.
func Available() error {
	_, err := binary()
	return err
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Shared returns one server for the whole test binary, started on first
// use; call StopShared from TestMain after m.Run. Tests sharing it keep
// apart by key prefix. It fails the test when redis-server is missing and
// QRAUTH_CI is set (CI installs it), and skips it otherwise, so a
// developer without Redis can still run the rest.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		skipOrFail(tb, sharedErr)
	}
	return shared
}

// StopShared stops the server Shared started, if any.
func StopShared() {
	if shared != nil {
		shared.Stop()
		shared.cleanup()
	}
}

// Own starts a server for tb alone (for tests that stop it), stopped and
// removed when tb ends; it skips or fails as Shared does.
func Own(tb testing.TB) *Server {
	tb.Helper()
	s, err := Start()
	if err != nil {
		skipOrFail(tb, err)
	}
	tb.Cleanup(func() { s.Stop(); s.cleanup() })
	return s
}

func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("QRAUTH_CI") != "" {
		tb.Fatalf("redis: %v", err)
	}
	tb.Skipf("redis: %v", err)
}

// Start starts a server on a free loopback port and waits until it
// answers PING.
func Start() (*Server, error) { return start(nil, nil) }

// StartTLS starts a server that also serves TLS with the given PEM
// certificate and key on another free port (TLSURL), not asking clients
// for certificates. It waits until the plain port answers PING.
func StartTLS(certPEM, keyPEM []byte) (*Server, error) {
	if certPEM == nil || keyPEM == nil {
		return nil, fmt.Errorf("StartTLS needs a certificate and a key")
	}
	return start(certPEM, keyPEM)
}

// OwnTLS is StartTLS for tb alone, as Own is Start.
func OwnTLS(tb testing.TB, certPEM, keyPEM []byte) *Server {
	tb.Helper()
	s, err := StartTLS(certPEM, keyPEM)
	if err != nil {
		skipOrFail(tb, err)
	}
	tb.Cleanup(func() { s.Stop(); s.cleanup() })
	return s
}

func start(certPEM, keyPEM []byte) (*Server, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "qrauth-redistest-")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	s := &Server{bin: bin, dir: dir, port: port}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.URL = "redis://" + s.Addr + "/0"
	if certPEM != nil {
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
			return fail(err)
		}
		if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
			return fail(err)
		}
		tlsPort, err := freePort()
		if err != nil {
			return fail(err)
		}
		s.tlsArgs = []string{"--tls-port", strconv.Itoa(tlsPort),
			"--tls-cert-file", cert, "--tls-key-file", key, "--tls-auth-clients", "no"}
		s.TLSURL = "rediss://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort)) + "/0"
	}
	if err := s.Restart(); err != nil {
		return fail(err)
	}
	return s, nil
}

// Restart starts the server again after Stop, on the same address and
// empty (it persisted nothing): what a client sees when Redis restarts.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("redis-server already running")
	}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--loglevel", "warning")
	cmd.Args = append(cmd.Args, s.tlsArgs...)
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so that a signal meant for the test binary's
	// group does not reach it and Stop reaches only it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done, s.log = cmd, done, log

	deadline := time.Now().Add(startWait)
	for {
		err := ping(s.Addr)
		if err == nil {
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("redis-server exited: %s", log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stopLocked()
			return fmt.Errorf("redis-server did not answer PING within %v: %v\n%s", startWait, err, log.String())
		}
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after a grace period) and
// waits until it has exited; Restart brings it back. Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

func (s *Server) cleanup() { os.RemoveAll(s.dir) }

// ping sends PING in the inline protocol and expects +PONG, without a
// client library, so that this package tests the server and nothing else.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Client returns a plain go-redis client on s for a test to look at or
// change the server directly (keys, TTLs, CONFIG SET), closed when tb ends.
func Client(tb testing.TB, s *Server) *goredis.Client {
	tb.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr})
	tb.Cleanup(func() { c.Close() })
	return c
}
