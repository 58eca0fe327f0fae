// Package pgtest starts a throw-away PostgreSQL server for tests: a fresh
// cluster made by initdb in a temporary directory, listening on a loopback
// port and a private socket directory, stopped and removed when the tests
// end. Nothing of the machine's own PostgreSQL service is used or touched.
//
// Each test gets its own schema (Server.Schema), which is far cheaper than a
// database per test and just as isolated for a store that names no schema.
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running throw-away PostgreSQL cluster.
type Server struct {
	// URL connects to the cluster's "postgres" database as its superuser.
	URL  string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	n    atomic.Int64
}

// binDir finds the directory of initdb and postgres: the PATH first, then
// Debian's versioned directories, newest first.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "postgres")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb not found on the PATH nor in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
}

// Available reports why PostgreSQL cannot be started here, or nil.
func Available() error {
	_, err := binDir()
	return err
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Shared returns one server for the whole test binary, started on first
// use; call Stop from TestMain after m.Run. It fails the test when
// PostgreSQL is missing and QRAUTH_CI is set (CI installs it), and skips it
// otherwise, so a developer without PostgreSQL can still run the rest.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		if os.Getenv("QRAUTH_CI") != "" {
			tb.Fatalf("postgres: %v", sharedErr)
		}
		tb.Skipf("postgres: %v", sharedErr)
	}
	return shared
}

// StopShared stops the server Shared started, if any.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// Start makes a cluster and starts it. PostgreSQL refuses to run as root,
// so as root the cluster is owned by and run as the "postgres" (or
// "nobody") user.
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "qrauth-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, done: make(chan struct{})}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			u, err = user.Lookup("nobody")
		}
		if err != nil {
			return fail(fmt.Errorf("running as root and no postgres or nobody user: %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
	}
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	run := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(bin, name), args...)
		c.Dir = dir
		c.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC")
		if cred != nil {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return c
	}
	var out bytes.Buffer
	initdb := run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-instructions")
	initdb.Stdout, initdb.Stderr = &out, &out
	if err := initdb.Run(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out.String()))
	}
	if err := os.Mkdir(sock, 0o700); err != nil {
		return fail(err)
	}
	if cred != nil {
		if err := os.Chown(sock, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	// fsync stays on: the crash tests rely on what PostgreSQL promises.
	s.cmd = run("postgres", "-D", data, "-k", sock, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-c", "max_connections=200", "-c", "shared_buffers=32MB", "-c", "log_min_messages=warning")
	var log bytes.Buffer
	s.cmd.Stdout, s.cmd.Stderr = &log, &log
	s.cmd.SysProcAttr = func() *syscall.SysProcAttr {
		a := s.cmd.SysProcAttr
		if a == nil {
			a = &syscall.SysProcAttr{}
		}
		a.Setpgid = true
		return a
	}()
	if err := s.cmd.Start(); err != nil {
		return fail(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)

	// Wait for it to accept connections, with a deadline.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.URL)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return s, nil
		}
		select {
		case <-s.done:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres exited: %s", log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("postgres did not accept connections within 30 s: %v\n%s", err, log.String())
		}
	}
}

// Stop shuts the cluster down fast and removes its files.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGINT) // "fast" shutdown
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// Schema creates a new empty schema for tb, dropped when tb ends, and
// returns a URL whose connections use it (search_path).
func (s *Server) Schema(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.n.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.URL)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, s.URL)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE")
	})
	u, _ := url.Parse(s.URL)
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
