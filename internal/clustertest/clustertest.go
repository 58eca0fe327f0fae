// Package clustertest runs real server processes for tests of a cluster:
// a binary built once per test binary (Build), instances of it started on
// loopback ports (Start), stopped, restarted or killed with SIGKILL, each
// waited for on its /readyz with a deadline and its log kept in memory and
// shown when the test fails; and a TCP proxy (Proxy) that a test can block
// to take a database away from the instances without touching the server
// that other tests share.
//
// Clients reach an instance as they would behind a load balancer: every
// instance serves one public origin, and Instance.Transport and
// Instance.Dialer send requests for that origin to this instance's port.
package clustertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var (
	buildMu   sync.Mutex
	built     = map[string]string{} // package path → binary
	buildErrs = map[string]error{}
	buildDir  string
)

// Build builds the command package pkg (an import path, such as
// github.com/qrauth/qrauth/cmd/qrauthd) with `go build -o` into a
// temporary directory, once per test binary, and returns the binary's
// path. Call Cleanup from TestMain after m.Run to remove it.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	if err, ok := buildErrs[pkg]; ok {
		tb.Fatal(err)
	}
	bin, err := build(pkg)
	if err != nil {
		buildErrs[pkg] = err
		tb.Fatal(err)
	}
	built[pkg] = bin
	return bin
}

func build(pkg string) (string, error) {
	if buildDir == "" {
		d, err := os.MkdirTemp("", "clustertest-bin-")
		if err != nil {
			return "", err
		}
		buildDir = d
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(buildDir, fmt.Sprintf("%s-%d", filepath.Base(pkg), len(built)))
	cmd := exec.Command(goBin, "build", "-o", bin, pkg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out.String())
	}
	return bin, nil
}

// Cleanup removes the binaries Build made.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
		buildDir = ""
	}
	built = map[string]string{}
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// logBuffer is a process's output, written by its pipes and read by the
// test at any time.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Options describe an instance.
type Options struct {
	// Name names it in messages and its log ("A", "B").
	Name string
	// Binary is the program (from Build).
	Binary string
	// Addr is the loopback host:port it listens on; it is given to the
	// program by the caller's Args (the harness knows no flags).
	Addr string
	// Args are the program's arguments.
	Args []string
	// Env is added to the process's environment, which is the test's
	// without any variable starting with one of DropEnv.
	Env     []string
	DropEnv []string
	// Ready is the path polled for 200 (default /readyz); ReadyWithin
	// bounds the wait (default 30 s).
	Ready       string
	ReadyWithin time.Duration
	// TLS, if set, is the clients' configuration for a process that
	// serves HTTPS (a TLS proxy in front of instances): URL is then
	// https://Addr, and Ready is polled, and Transport and Dialer
	// connect, with it.
	TLS *tls.Config
}

// Instance is one server process (running or not).
type Instance struct {
	Options
	// URL is http://Addr (https:// with TLS), where this instance is
	// reached directly.
	URL string

	tb   testing.TB
	log  *logBuffer
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error // how the last process ended, once done is closed
	runs int
}

// Start starts an instance and waits until it is ready. It is killed when
// tb ends; if tb failed, its log is shown then.
func Start(tb testing.TB, opts Options) *Instance {
	tb.Helper()
	in := New(tb, opts)
	if err := in.Start(); err != nil {
		tb.Fatal(err)
	}
	return in
}

// New is an instance not yet started; Start starts it.
func New(tb testing.TB, opts Options) *Instance {
	tb.Helper()
	if opts.Ready == "" {
		opts.Ready = "/readyz"
	}
	if opts.ReadyWithin == 0 {
		opts.ReadyWithin = 30 * time.Second
	}
	in := &Instance{Options: opts, URL: "http://" + opts.Addr, tb: tb, log: &logBuffer{}}
	if opts.TLS != nil {
		in.URL = "https://" + opts.Addr
	}
	tb.Cleanup(func() {
		in.Kill()
		if tb.Failed() {
			tb.Logf("log of instance %s:\n%s", in.Name, in.Log())
		}
	})
	return in
}

// Log is everything the instance wrote to stdout and stderr, over all its
// runs.
func (in *Instance) Log() string { return in.log.String() }

// Running reports whether its process runs.
func (in *Instance) Running() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cmd != nil
}

// Start starts the process and waits until it is ready: Ready answers 200
// within ReadyWithin. A process that exits first fails the start.
func (in *Instance) Start() error {
	in.mu.Lock()
	if in.cmd != nil {
		in.mu.Unlock()
		return fmt.Errorf("instance %s already running", in.Name)
	}
	in.runs++
	cmd := exec.Command(in.Binary, in.Args...)
	cmd.Env = in.env()
	fmt.Fprintf(in.log, "--- %s run %d: %s\n", in.Name, in.runs, strings.Join(in.Args, " "))
	cmd.Stdout, cmd.Stderr = in.log, in.log
	// Its own process group: a signal for the test's group does not
	// reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		in.mu.Unlock()
		return fmt.Errorf("instance %s: %w", in.Name, err)
	}
	done := make(chan struct{})
	in.cmd, in.done = cmd, done
	go func() {
		err := cmd.Wait()
		in.mu.Lock()
		in.err = err
		in.mu.Unlock()
		close(done)
	}()
	in.mu.Unlock()
	if err := in.WaitReady(in.ReadyWithin); err != nil {
		return err
	}
	return nil
}

func (in *Instance) env() []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range in.DropEnv {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return append(env, in.Env...)
}

// Exited is closed when the current process has exited (nil if none runs).
func (in *Instance) Exited() <-chan struct{} {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.done
}

// WaitReady polls Ready until it answers 200, the process exits, or d
// passes.
func (in *Instance) WaitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	done := in.Exited()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: in.TLS}}
	defer client.CloseIdleConnections()
	var last string
	for {
		resp, err := client.Get(in.URL + in.Ready)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		select {
		case <-done:
			return fmt.Errorf("instance %s exited before it was ready (%s); its log:\n%s", in.Name, in.exitErr(), in.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("instance %s not ready within %v (last: %s); its log:\n%s", in.Name, d, last, in.Log())
		}
	}
}

func (in *Instance) exitErr() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.err == nil {
		return errors.New("exit status 0")
	}
	return in.err
}

// Stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns how the process ended (nil: exit status 0).
func (in *Instance) Stop(grace time.Duration) error {
	return in.signal(syscall.SIGTERM, grace)
}

// Kill kills the process with SIGKILL (kill -9) and waits until it is
// gone: no shutdown runs, nothing is flushed, its sockets are reset.
func (in *Instance) Kill() {
	in.signal(syscall.SIGKILL, time.Minute)
}

// Quit sends SIGQUIT, on which a Go program writes the stack of every
// goroutine to its log and exits: what a test calls before it fails on a
// hang, to see where the instance was stuck.
func (in *Instance) Quit() {
	in.signal(syscall.SIGQUIT, 10*time.Second)
}

func (in *Instance) signal(sig syscall.Signal, grace time.Duration) error {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.cmd = nil
	fmt.Fprintf(in.log, "--- %s run %d ended by %v: %v\n", in.Name, in.runs, sig, in.err)
	return in.err
}

// dial connects to this instance whatever address was asked for: a load
// balancer that sent this connection here.
func (in *Instance) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, in.Addr)
}

// Transport sends every request to this instance (a new one each call,
// so that connections to a killed instance are not reused by others).
func (in *Instance) Transport() *http.Transport {
	return &http.Transport{DialContext: in.dial, TLSClientConfig: in.TLS, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
}

// Client is an HTTP client whose requests all reach this instance, with
// jar (may be nil) for cookies.
func (in *Instance) Client(jar http.CookieJar) *http.Client {
	return &http.Client{Transport: in.Transport(), Jar: jar, Timeout: 15 * time.Second}
}

// Dialer is a WebSocket dialer whose connections all reach this instance.
func (in *Instance) Dialer() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: in.dial, TLSClientConfig: in.TLS, HandshakeTimeout: 10 * time.Second}
}

// Proxy forwards TCP connections from a loopback port to a target, until
// Block: then it cuts every connection and refuses new ones (accepting
// and closing them at once, as a server that went away would), until
// Unblock. Put it between instances and a database that other tests
// share to take the database away from these instances only.
type Proxy struct {
	// Addr is where the proxy listens.
	Addr   string
	target string
	ln     net.Listener

	mu      sync.Mutex
	blocked bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// NewProxy starts a proxy to target (host:port), closed when tb ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(p.Close)
	return p
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.blocked {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c)
		}()
	}
}

func (p *Proxy) pipe(c net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.blocked {
		p.mu.Unlock()
		up.Close()
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
		up.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); up.Close(); done <- struct{}{} }()
	go func() { io.Copy(c, up); c.Close(); done <- struct{}{} }()
	<-done
	<-done
}

// Block cuts every connection through the proxy and refuses new ones.
func (p *Proxy) Block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for c := range p.conns {
		c.Close()
	}
}

// Unblock lets connections through again.
func (p *Proxy) Unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
}

// Close stops the proxy and cuts its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Block()
	p.wg.Wait()
}
