package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/server/oidcflow"
	"github.com/qrauth/qrauth/shared"
	sharedredis "github.com/qrauth/qrauth/shared/redis"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/store/postgres"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/time/rate"
)

// target is one server under test.
type target struct {
	URL           string // http://127.0.0.1:PORT
	Origin        string // the server's public origin, from discovery
	BrowserSocket string // ws://.../ws/browser
	AppSocket     string // ws://.../ws/app
	PhoneSalt     []byte
	Bind          string // a bind cookie the server issued, shared by the bench's browsers
	PID           int    // 0: unknown
	Debug         string // debug base URL, "" if none
	inproc        *inprocServer
}

// benchStore is what an in-process server is given: the bbolt file or
// PostgreSQL.
type benchStore interface {
	qrauth.Store
	oidc.Store
	Close() error
}

// inprocServer is a server this process started over a bbolt file, or
// over PostgreSQL (--store), with more instances beside it sharing the
// store and Redis (--redis, --instances).
type inprocServer struct {
	srv     *server.Server
	others  []*server.Server // further instances: same store, same shared state, same origin
	db      benchStore
	sh      shared.Store // nil: one instance alone
	dir     string
	removes bool
}

// startInproc starts a server on addr over a fresh bbolt file (or
// --store) with rate limits off, and --instances-1 more on 127.0.0.1:0.
func startInproc(o *options, addr string, roomTTL time.Duration) (*inprocServer, error) {
	s := &inprocServer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fail := func(err error) (*inprocServer, error) {
		s.closeStores()
		return nil, err
	}
	if o.storeURL != "" {
		pg, err := postgres.Open(ctx, o.storeURL, postgres.Options{})
		if err != nil {
			return nil, fmt.Errorf("--store: %w", err)
		}
		s.db = pg
	} else {
		dir, removes := o.dataDir, false
		if dir == "" {
			d, err := os.MkdirTemp("", "qrauth-bench-*")
			if err != nil {
				return nil, err
			}
			dir, removes = d, true
		}
		s.dir, s.removes = dir, removes
		db, err := store.Open(filepath.Join(dir, "qrauth.db"), store.Options{})
		if err != nil {
			return fail(err)
		}
		s.db = db
	}
	if o.redisURL != "" {
		sh, err := sharedredis.Open(ctx, o.redisURL, sharedredis.Options{})
		if err != nil {
			return fail(fmt.Errorf("--redis: %w", err))
		}
		s.sh = sh
	}
	if o.roomTTL > 0 {
		roomTTL = o.roomTTL
	}
	cfg := server.Config{
		Addr: addr, Origin: o.origin, RoomRate: rate.Inf, AppRate: rate.Inf, MaxRooms: o.maxRooms,
		PSKRotation: o.pskRotation, RoomTTL: roomTTL, Shared: s.sh,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	open := func(cfg server.Config) (*server.Server, error) {
		// The oidc command signs in for a relying site: the provider is
		// a flow, as qrauthd lists it.
		var flows []server.Flow
		if o.command == "oidc" {
			flows = append(flows, oidcflow.New(oidcflow.Config{}, s.db))
		}
		srv, err := server.New(cfg, s.db, flows...)
		if err == nil {
			err = srv.Open()
		}
		return srv, err
	}
	srv, err := open(cfg)
	if err != nil {
		return fail(err)
	}
	s.srv = srv
	for range o.instances - 1 {
		cfg.Addr, cfg.Origin = "127.0.0.1:0", srv.Origin()
		other, err := open(cfg)
		if err != nil {
			s.close()
			return nil, err
		}
		s.others = append(s.others, other)
	}
	return s, nil
}

func (s *inprocServer) closeStores() error {
	var errs []error
	if s.sh != nil {
		errs = append(errs, s.sh.Close())
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	if s.removes {
		os.RemoveAll(s.dir)
	}
	return errors.Join(errs...)
}

// close shuts the servers down, then closes the stores it opened (a
// server never closes the store it is given).
func (s *inprocServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, o := range s.others {
		errs = append(errs, o.Shutdown(ctx))
	}
	errs = append(errs, s.srv.Shutdown(ctx), s.closeStores())
	return errors.Join(errs...)
}

// openTargets starts the in-process server or resolves the --server list,
// and reads each server's discovery document. close shuts down what it
// started.
func openTargets(ctx context.Context, o *options, roomTTL time.Duration) (ts []*target, close func(), err error) {
	if len(o.servers) == 0 {
		s, err := startInproc(o, "127.0.0.1:0", roomTTL)
		if err != nil {
			return nil, nil, fmt.Errorf("start server: %w", err)
		}
		for _, srv := range append([]*server.Server{s.srv}, s.others...) {
			t := &target{URL: "http://" + srv.Addr().String(), PID: os.Getpid(), inproc: s}
			if err := t.discover(ctx, o.timeout); err != nil {
				s.close()
				return nil, nil, err
			}
			ts = append(ts, t)
		}
		return ts, func() { s.close() }, nil
	}
	for i, u := range o.servers {
		t := &target{URL: u}
		if len(o.serverPIDs) > 0 {
			t.PID = o.serverPIDs[i]
		}
		if len(o.debugURLs) > 0 {
			t.Debug = o.debugURLs[i]
		}
		if err := t.discover(ctx, o.timeout); err != nil {
			return nil, nil, err
		}
		if t.PID == 0 && t.Debug != "" {
			if st, err := t.debugStats(ctx, false); err == nil {
				t.PID = st.PID
			}
		}
		ts = append(ts, t)
	}
	return ts, func() {}, nil
}

// discover reads /.well-known/qrauth for the origin and the phone salt.
func (t *target) discover(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+wire.PathDiscovery, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("discovery of %s: %w", t.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("discovery of %s: %s", t.URL, resp.Status)
	}
	var d wire.Discovery
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&d); err != nil {
		return fmt.Errorf("discovery of %s: %w", t.URL, err)
	}
	salt, err := base64.RawURLEncoding.DecodeString(d.PhoneSalt)
	if err != nil || d.Origin == "" {
		return fmt.Errorf("discovery of %s: no origin or phone salt", t.URL)
	}
	t.Origin, t.PhoneSalt = d.Origin, salt
	ws := "ws" + strings.TrimPrefix(t.URL, "http")
	t.BrowserSocket, t.AppSocket = ws+wire.PathBrowserSocket, ws+wire.PathAppSocket
	// The server accepts only bind cookies it issued: take one from the
	// login page, as a browser does. One serves every simulated browser
	// (tickets are then bound to it; each is still exchanged once).
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, t.URL+wire.PathLogin, nil)
	page, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("login page of %s: %w", t.URL, err)
	}
	page.Body.Close()
	for _, c := range page.Cookies() {
		if c.Name == "qrauth_bind" && c.Value != "" {
			t.Bind = c.Value
		}
	}
	if t.Bind == "" {
		return fmt.Errorf("login page of %s set no bind cookie", t.URL)
	}
	return nil
}

// debugStats is qrauthd's /debug/stats document.
type debugStats struct {
	PID        int    `json:"pid"`
	Goroutines int    `json:"goroutines"`
	Rooms      int    `json:"rooms"`
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
}

func (t *target) debugStats(ctx context.Context, gc bool) (*debugStats, error) {
	if t.inproc != nil {
		if gc {
			debug.FreeOSMemory()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return &debugStats{PID: os.Getpid(), Goroutines: runtime.NumGoroutine(), Rooms: t.inproc.srv.Rooms(),
			HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Sys: ms.Sys}, nil
	}
	if t.Debug == "" {
		return nil, errors.New("no --debug address")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := t.Debug + "/debug/stats"
	if gc {
		// Collect and return free pages to the OS first, so that VmRSS is
		// what the rooms need rather than the collector's headroom.
		u += "?free=1"
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st debugStats
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Sample is a server's state at one moment.
type Sample struct {
	RSSKiB       int64   `json:"rss_kib"`
	Goroutines   int     `json:"goroutines,omitempty"`
	Rooms        int     `json:"rooms,omitempty"`
	HeapInuseKiB float64 `json:"heap_inuse_kib,omitempty"`
	StackKiB     float64 `json:"stack_inuse_kib,omitempty"`
}

// sample reads the server's VmRSS and, if it has a debug address, its
// goroutines and heap. gc asks the server to collect garbage first.
func (t *target) sample(ctx context.Context, gc bool) Sample {
	var s Sample
	if st, err := t.debugStats(ctx, gc); err == nil {
		s.Goroutines, s.Rooms = st.Goroutines, st.Rooms
		s.HeapInuseKiB, s.StackKiB = kib(st.HeapInuse), kib(st.StackInuse)
	}
	if t.PID > 0 {
		s.RSSKiB, _ = procStatusKiB(t.PID, "VmRSS")
	}
	return s
}

// runServe runs a benchmark server in its own process until interrupted
// or --duration ends: rate limits off, pprof and /debug/stats (the same
// document as qrauthd's) on --debug-addr.
func runServe(ctx context.Context, o *options, stderr io.Writer) error {
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil || !isLoopbackHost(host) {
		return fmt.Errorf("--addr %q: want a loopback HOST:PORT", o.addr)
	}
	limit := o.duration // default a day: every loop is bounded
	ttl := o.roomTTL
	if ttl == 0 {
		ttl = 3 * time.Minute
	}
	s, err := startInproc(o, o.addr, ttl)
	if err != nil {
		return err
	}
	defer s.close()
	fmt.Fprintf(stderr, "serving %s (pid %d, data %s)\n", "http://"+s.srv.Addr().String(), os.Getpid(), s.dir)
	if o.debugAddr != "" {
		h, _, err := net.SplitHostPort(o.debugAddr)
		if err != nil || !isLoopbackHost(h) {
			return fmt.Errorf("--debug-addr %q: want a loopback HOST:PORT", o.debugAddr)
		}
		ln, err := net.Listen("tcp", o.debugAddr)
		if err != nil {
			return err
		}
		t := &target{inproc: s}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/stats", func(w http.ResponseWriter, r *http.Request) {
			st, _ := t.debugStats(r.Context(), r.URL.Query().Get("gc") == "1")
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(st)
		})
		dbg := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go dbg.Serve(ln)
		defer dbg.Close()
		fmt.Fprintf(stderr, "debug http://%s/debug/stats\n", ln.Addr())
	}
	select {
	case <-ctx.Done():
	case <-time.After(limit):
	}
	return nil
}
