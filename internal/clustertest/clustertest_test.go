package clustertest_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth/internal/clustertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	clustertest.Cleanup()
	os.Exit(code)
}

func readyd(t *testing.T, name string, args ...string) *clustertest.Instance {
	bin := clustertest.Build(t, "./testdata/readyd")
	addr := clustertest.FreeAddr(t)
	return clustertest.New(t, clustertest.Options{Name: name, Binary: bin, Addr: addr,
		Args: append([]string{"-addr", addr}, args...), Env: []string{"READYD_NAME=" + name},
		DropEnv: []string{"READYD_"}, ReadyWithin: 10 * time.Second})
}

func get(t *testing.T, in *clustertest.Instance, via *clustertest.Instance) string {
	t.Helper()
	// The URL names in; the transport of via decides where it goes.
	resp, err := via.Client(nil).Get(in.URL + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// An instance is ready only once /readyz says so, is reached through its
// transport whatever the URL's port, stops on SIGTERM with status 0, dies
// on Kill, starts again on the same address, and its log holds all runs.
func TestInstanceLife(t *testing.T) {
	a := readyd(t, "A", "-delay", "300ms")
	b := readyd(t, "B")
	start := time.Now()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatalf("Start returned after %v, before /readyz said 200", time.Since(start))
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, a, b); got != b.Addr+" B" {
		t.Fatalf("a request for A's URL through B's transport reached %q", got)
	}
	if got := get(t, a, a); got != a.Addr+" A" {
		t.Fatalf("reached %q", got)
	}
	if err := a.Stop(5 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if a.Running() {
		t.Fatal("still running after Stop")
	}
	b.Kill()
	if _, err := net.DialTimeout("tcp", b.Addr, time.Second); err == nil {
		t.Fatal("B still listens after Kill")
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, a, a); got != a.Addr+" A" {
		t.Fatalf("after restart: %q", got)
	}
	log := a.Log()
	if strings.Count(log, "readyd: listening") != 2 || !strings.Contains(log, "readyd: stopping") || !strings.Contains(log, "run 2") {
		t.Fatalf("log of two runs:\n%s", log)
	}
}

// A process that exits before it is ready fails Start at once with its
// log; one never ready fails it at the deadline.
func TestInstanceNotReady(t *testing.T) {
	x := readyd(t, "X", "-exit", "3")
	start := time.Now()
	err := x.Start()
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "exiting as told") {
		t.Fatalf("exiting program: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("noticed after %v", time.Since(start))
	}
	y := readyd(t, "Y", "-delay", "1h")
	y.ReadyWithin = 500 * time.Millisecond
	err = y.Start()
	if err == nil || !strings.Contains(err.Error(), "not ready within") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("never ready: %v", err)
	}
}

// The proxy forwards until Block, cuts open connections and refuses new
// ones while blocked, and forwards again after Unblock.
func TestProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	p := clustertest.NewProxy(t, ln.Addr().String())
	echo := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line != "ping\n" {
			t.Fatalf("echo %q", line)
		}
		return err
	}
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echo(c); err != nil {
		t.Fatal(err)
	}
	p.Block()
	if err := echo(c); err == nil {
		t.Fatal("an open connection still works while blocked")
	}
	c2, err := net.Dial("tcp", p.Addr)
	if err == nil {
		if echo(c2) == nil {
			t.Fatal("a new connection works while blocked")
		}
		c2.Close()
	}
	p.Unblock()
	c3, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := echo(c3); err != nil {
		t.Fatalf("after Unblock: %v", err)
	}
}
