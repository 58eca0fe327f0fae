// Command qrauth-bench measures a qrauth server over real loopback TCP with
// real WebSocket clients: how many browser rooms one server process holds
// and at what memory cost (hold), how many complete durable sign-ins per
// second it serves and how fast (login), how many complete OpenID Connect
// sign-ins for a relying site, ID token verified (oidc), and, in the same invocation, the
// machine's bare WebSocket ceiling (baseline), so that every figure is also
// printed as a ratio to what the transport alone can do.
//
// Usage:
//
//	qrauth-bench hold     [flags]   open --rooms browser rooms, keep them waiting
//	qrauth-bench login    [flags]   run complete sign-ins at --rate per second
//	qrauth-bench oidc     [flags]   the same as OpenID Connect sign-ins (in-process server only)
//	qrauth-bench baseline [flags]   plain gorilla/websocket echo on loopback
//	qrauth-bench all      [flags]   baseline, hold, login
//	qrauth-bench serve    [flags]   a benchmark server in its own process
//
// Without --server the harness starts a server in its own process over a
// bbolt file in a temporary directory, with rate limits off. With --server
// it drives a running server, which must listen on a loopback address.
// Figures of the server's memory come from /proc/PID/status (VmRSS) of the
// server process: give --server-pid or --debug (the server's -debug-addr,
// whose /debug/stats names its pid and goroutines).
//
// Every loop is bounded in count and in time, and the harness refuses to
// talk to anything but loopback addresses.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: qrauth-bench hold|login|baseline|all|serve [flags]

  hold      open --rooms browser rooms and keep them waiting for --duration
  login     pre-register --devices phones, then run complete sign-ins at --rate
  oidc      as login, each sign-in an OpenID Connect sign-in for a registered
            site: authorize → QR → phone → code → token (PKCE) → ID token
            verified (its own server only: no --server)
  baseline  measure a plain gorilla/websocket echo server on loopback
  all       baseline, hold and login in one run
  serve     run a benchmark server (no rate limits, pprof on --debug-addr)

Run "qrauth-bench COMMAND -h" for the flags.
`

// options are the flags of every subcommand; each uses the ones it needs.
type options struct {
	command string

	servers    []string // --server, comma-separated
	serverPIDs []int    // --server-pid, one per server
	debugURLs  []string // --debug, one per server
	sourceIPs  []net.IP
	jsonOut    bool
	quiet      bool
	timeout    time.Duration

	// The server this process starts when no --server is given.
	pskRotation time.Duration
	roomTTL     time.Duration
	dataDir     string
	storeURL    string // postgres://…: the PostgreSQL store instead of a bbolt file
	redisURL    string // redis://…: the cluster's shared state
	instances   int    // in-process instances sharing --store and --redis
	origin      string // serve: the public origin (another instance's, in a cluster)

	// hold
	rooms       int
	duration    time.Duration
	openTimeout time.Duration
	clients     int
	dialConc    int

	// login
	rate     float64
	count    int
	devices  int
	inflight int

	// oidc
	idTokenAlg string

	// baseline
	baseline      bool
	baselineDur   time.Duration
	baselineConns int

	cpuProfile string
	memProfile string

	// serve
	addr      string
	debugAddr string
	maxRooms  int
}

// Defaults of --duration per subcommand.
const (
	defaultHoldDuration  = 45 * time.Second
	defaultLoginDuration = 10 * time.Second
)

func parseFlags(command string, args []string, stderr io.Writer) (*options, error) {
	o := &options{command: command}
	fs := flag.NewFlagSet("qrauth-bench "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var servers, pids, debugs, ips string
	fs.StringVar(&servers, "server", "", "URL of a running server on loopback, e.g. http://127.0.0.1:8080; comma-separated for several (hold); empty: start one in this process")
	fs.StringVar(&pids, "server-pid", "", "pid of each --server process, for its VmRSS (default: the pid in --debug's /debug/stats)")
	fs.StringVar(&debugs, "debug", "", "URL of each --server's debug address (qrauthd -debug-addr), e.g. http://127.0.0.1:6060, for goroutines, heap and pid")
	fs.StringVar(&ips, "source-ips", "127.0.0.2-127.0.0.40", "loopback source addresses the clients' connections are spread over (ranges and commas)")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object instead of the table")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound on each step (dial, message, request)")

	fs.DurationVar(&o.pskRotation, "psk-rotation", 30*time.Second, "in-process server: QR code rotation")
	fs.DurationVar(&o.roomTTL, "room-ttl", 0, "in-process server: room lifetime (default: long enough for the run)")
	fs.StringVar(&o.storeURL, "store", "", "in-process server and serve: a postgres:// URL to use PostgreSQL instead of a bbolt file (an empty database, or one a qrauthd made)")
	fs.StringVar(&o.redisURL, "redis", "", "in-process server and serve: a redis:// URL of the cluster's shared state (needs --store)")
	fs.IntVar(&o.instances, "instances", 1, "in-process servers sharing --store and --redis (2: browsers on the first, phones on the second)")
	fs.StringVar(&o.origin, "origin", "", "serve: the public origin, default http://ADDR; give the first instance's to a second one")
	fs.StringVar(&o.dataDir, "data-dir", "", "in-process server: directory for the bbolt file, kept afterwards (default: a temporary directory, removed)")

	fs.IntVar(&o.rooms, "rooms", 1000, "hold: rooms to open")
	fs.DurationVar(&o.duration, "duration", 0, fmt.Sprintf("hold: how long to keep all rooms waiting once open (default %s); login: how long to run sign-ins (default %s)", defaultHoldDuration, defaultLoginDuration))
	fs.DurationVar(&o.openTimeout, "open-timeout", 5*time.Minute, "hold: bound on opening all rooms")
	fs.IntVar(&o.clients, "clients", 2, "hold: client processes to spread the connections over (0: goroutines in this process)")
	fs.IntVar(&o.dialConc, "dial-concurrency", 32, "hold: rooms being opened at once per client process")

	fs.Float64Var(&o.rate, "rate", 1000, "login: sign-ins started per second (0: as fast as --inflight allows)")
	fs.IntVar(&o.count, "count", 0, "login: sign-ins to run (default: rate × duration)")
	fs.IntVar(&o.devices, "devices", 100, "login: phones to register before the run")
	fs.IntVar(&o.inflight, "inflight", 256, "login: cap on sign-ins in flight")
	fs.StringVar(&o.idTokenAlg, "id-token-alg", "RS256", "oidc: the site's ID token algorithm, RS256 or EdDSA")

	fs.BoolVar(&o.baseline, "baseline", command != "serve", "hold, login: also measure the echo baseline and print ratios")
	fs.DurationVar(&o.baselineDur, "baseline-duration", 3*time.Second, "baseline: length of each of its three measurements")
	fs.IntVar(&o.baselineConns, "baseline-conns", 8, "baseline: concurrent connections")

	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (with an in-process server: server and clients)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile of this process at the end")

	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "serve: listen address (loopback)")
	fs.StringVar(&o.debugAddr, "debug-addr", "", "serve: pprof and /debug/stats address (loopback)")
	fs.IntVar(&o.maxRooms, "max-rooms", 1_000_000, "serve and in-process server: cap on open rooms")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	for _, s := range splitList(servers) {
		u, err := checkLoopbackURL(s, "--server")
		if err != nil {
			return nil, err
		}
		o.servers = append(o.servers, u)
	}
	for _, s := range splitList(pids) {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--server-pid %q: want a process id", s)
		}
		o.serverPIDs = append(o.serverPIDs, n)
	}
	for _, s := range splitList(debugs) {
		u, err := checkLoopbackURL(s, "--debug")
		if err != nil {
			return nil, err
		}
		o.debugURLs = append(o.debugURLs, u)
	}
	if err := o.checkCluster(); err != nil {
		return nil, err
	}
	if len(o.serverPIDs) > 0 && len(o.serverPIDs) != len(o.servers) {
		return nil, errors.New("give one --server-pid per --server")
	}
	if len(o.debugURLs) > 0 && len(o.debugURLs) != len(o.servers) {
		return nil, errors.New("give one --debug per --server")
	}
	if o.sourceIPs, err = parseIPs(ips); err != nil {
		return nil, err
	}
	if o.duration == 0 {
		switch command {
		case "hold", "hold-worker":
			o.duration = defaultHoldDuration
		case "serve":
			o.duration = 24 * time.Hour
		default:
			o.duration = defaultLoginDuration
		}
	}
	switch {
	case o.duration < 0 || o.timeout <= 0 || o.openTimeout <= 0 || o.baselineDur <= 0:
		return nil, errors.New("durations must be positive")
	case o.rooms < 0 || o.count < 0 || o.devices < 1 || o.inflight < 1 || o.clients < 0 || o.dialConc < 1 || o.baselineConns < 1:
		return nil, errors.New("--rooms, --count and --clients must not be negative; --devices, --inflight, --dial-concurrency and --baseline-conns must be at least 1")
	case o.rate < 0:
		return nil, errors.New("--rate must not be negative")
	case o.pskRotation <= 0:
		return nil, errors.New("--psk-rotation must be positive")
	case o.idTokenAlg != "RS256" && o.idTokenAlg != "EdDSA":
		return nil, errors.New("--id-token-alg is RS256 or EdDSA")
	case command == "oidc" && len(o.servers) > 0:
		return nil, errors.New("oidc registers its site in the store of the server it starts: give no --server")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// checkLoopbackURL accepts http URLs whose host is a loopback address and
// returns them without a trailing slash.
func checkLoopbackURL(s, flagName string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("%s %q: want http://HOST:PORT on loopback", flagName, s)
	}
	if !isLoopbackHost(u.Hostname()) {
		return "", fmt.Errorf("%s %q: the harness drives loopback servers only", flagName, s)
	}
	return "http://" + u.Host, nil
}

// checkCluster checks --store, --redis, --instances and --origin: the
// engines must be on loopback like everything the harness talks to.
func (o *options) checkCluster() error {
	for _, c := range []struct{ flag, url string }{{"--store", o.storeURL}, {"--redis", o.redisURL}} {
		if c.url == "" {
			continue
		}
		u, err := url.Parse(c.url)
		if err != nil || u.Host == "" {
			return fmt.Errorf("%s: want a URL such as postgres://127.0.0.1:5432/db or redis://127.0.0.1:6379/0", c.flag)
		}
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("%s: the harness uses loopback servers only, not %s", c.flag, u.Hostname())
		}
	}
	if o.storeURL != "" && !strings.HasPrefix(o.storeURL, "postgres://") && !strings.HasPrefix(o.storeURL, "postgresql://") {
		return errors.New("--store: want a postgres:// URL")
	}
	if o.redisURL != "" && o.storeURL == "" {
		return errors.New("--redis needs --store: instances sharing state share PostgreSQL, not a bbolt file")
	}
	if o.instances < 1 || o.instances > 2 {
		return errors.New("--instances: 1 or 2")
	}
	if o.instances > 1 && (o.redisURL == "" || len(o.servers) > 0) {
		return errors.New("--instances 2 needs --redis and no --server (for running instances give --server A,B)")
	}
	if o.origin != "" {
		if _, err := checkLoopbackURL(o.origin, "--origin"); err != nil {
			return err
		}
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	command := args[0]
	switch command {
	case "hold", "login", "oidc", "baseline", "all", "serve", "hold-worker":
	default:
		fmt.Fprintf(stderr, "qrauth-bench: unknown command %q\n\n%s", command, usage)
		return 2
	}
	o, err := parseFlags(command, args[1:], stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "qrauth-bench:", err)
		return 2
	}
	raiseOpenFileLimit()

	switch command {
	case "hold-worker":
		if err := runHoldWorker(ctx, o, stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "qrauth-bench hold-worker:", err)
			return 1
		}
		return 0
	case "serve":
		if err := runServe(ctx, o, stderr); err != nil {
			fmt.Fprintln(stderr, "qrauth-bench serve:", err)
			return 1
		}
		return 0
	}

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "qrauth-bench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "qrauth-bench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := runBench(ctx, o, stderr)
	if o.memProfile != "" {
		if f, ferr := os.Create(o.memProfile); ferr == nil {
			runtime.GC()
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "qrauth-bench:", err)
		return 1
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "qrauth-bench:", err)
			return 1
		}
	} else {
		printReport(stdout, rep)
	}
	return 0
}

// runBench runs the measurements of o.command and returns the report.
func runBench(ctx context.Context, o *options, stderr io.Writer) (*Report, error) {
	rep := &Report{Command: o.command, Machine: machine(o)}
	prog := newProgress(stderr, o.quiet)
	if o.command == "baseline" || o.baseline {
		b, err := runBaseline(ctx, o, prog)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		rep.Baseline = b
	}
	if o.command == "hold" || o.command == "all" {
		h, err := runHold(ctx, o, prog)
		if err != nil {
			return nil, fmt.Errorf("hold: %w", err)
		}
		rep.Hold = h
	}
	if o.command == "login" || o.command == "oidc" || o.command == "all" {
		l, err := runLogin(ctx, o, prog)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.command, err)
		}
		rep.Login = l
	}
	rep.Machine.LoadAvgEnd = loadAvg()
	rep.Ratios = ratios(rep)
	return rep, nil
}
