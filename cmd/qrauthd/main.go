// Command qrauthd runs the qrauth login service: one binary, an embedded
// bbolt database, listening on 127.0.0.1:8080 unless told otherwise.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qrauth/qrauth/internal/metrics"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/server/badgeflow"
	"github.com/qrauth/qrauth/server/forwardauth"
	"github.com/qrauth/qrauth/server/oathflow"
	"github.com/qrauth/qrauth/server/offlineflow"
	"github.com/qrauth/qrauth/server/oidcflow"
	"github.com/qrauth/qrauth/server/recoveryflow"
	"github.com/qrauth/qrauth/shared/redis"
	"github.com/qrauth/qrauth/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Main is the program: flags in, a running server out. Tests run it on
// port 0 exactly as main does.
type Main struct {
	DataPath string
	Config   server.Config
	TLSCert  string
	TLSKey   string
	// ACME, when it has domains, gets the certificates instead of
	// TLSCert and TLSKey.
	ACME          ACME
	LogLevel      string
	LogFormat     string
	ShutdownGrace time.Duration
	LogOutput     io.Writer
	DebugAddr     string
	// MetricsAddr, when set, serves /metrics, /healthz and /readyz on this
	// operator-only address (internal/metrics).
	MetricsAddr string
	AdminSocket string
	KeyFile     string
	ForwardAuth forwardauth.Config
	// Badge configures badges and passwords (server/badgeflow), listed
	// while BadgeOn (-badges).
	Badge   badgeflow.Config
	BadgeOn bool
	// OATH configures the OATH second factor (server/oathflow); OATHOn
	// (-oath, or an -oath-policy other than off) lists the flow.
	OATH   oathflow.Config
	OATHOn bool
	// Offline configures offline codes and transaction approval
	// (server/offlineflow), listed while OfflineOn.
	Offline   offlineflow.Config
	OfflineOn bool
	// Recovery configures recovery codes and helpdesk link codes
	// (server/recoveryflow), always listed.
	Recovery recoveryflow.Config
	// CheckOnStart is "auto" (check files up to checkOnStartLimit), "true"
	// or "false": whether Run checks the database before serving.
	CheckOnStart string
	// OIDC switches the OpenID Connect provider (on by default); OIDCConfig
	// tunes it.
	OIDC       bool
	OIDCConfig oidcflow.Config
	// ConfigFile is -config: settings under the flags and the environment
	// (config.go).
	ConfigFile string

	debug     *http.Server
	metrics   *http.Server
	metricsLn net.Listener

	Server *server.Server
	// Store is the store Run opened: DB (bbolt) unless -store names
	// PostgreSQL, when DB is nil.
	Store fullStore
	DB    *store.DB
	// StoreURL is -store: a postgres:// URL, or "" for the bbolt file
	// DataPath.
	StoreURL string
	// RedisURL is -redis: the Redis a cluster's instances share
	// (cluster.go), "" for one instance alone; RedisPrefix and RedisCA are
	// -redis-prefix and -redis-ca.
	RedisURL    string
	RedisPrefix string
	RedisCA     string
	// Shared is the Redis Run opened for -redis (also in
	// Config.Shared), nil without it; Close closes it after the server.
	Shared *redis.Store

	redisPassword string // from QRAUTH_REDIS_PASSWORD
}

// The defaults of Main's own settings; those of the server's are
// server.Default* and the flows' Default* beside their configs. The flags
// default to them (README's table is checked against the flags).
const (
	DefaultLogLevel      = "info"
	DefaultLogFormat     = "text"
	DefaultCheckOnStart  = "auto"
	DefaultShutdownGrace = 15 * time.Second
)

// DefaultDataPath is the database file, relative to the working directory.
var DefaultDataPath = filepath.Join("data", "qrauth.db")

// defaultAdminSocket is where the operator socket goes when -admin-socket
// is not given: next to the database.
func defaultAdminSocket(dataPath string) string {
	return filepath.Join(filepath.Dir(dataPath), "admin.sock")
}

// NewMain returns a Main with the defaults.
func NewMain() *Main {
	return &Main{DataPath: DefaultDataPath, LogLevel: DefaultLogLevel, LogFormat: DefaultLogFormat,
		ShutdownGrace: DefaultShutdownGrace, LogOutput: os.Stderr, CheckOnStart: DefaultCheckOnStart, OIDC: true}
}

// env returns the environment variable QRAUTH_<NAME> or def, so every flag
// can also come from the environment (flags win).
func env(name, def string) string {
	if v, ok := os.LookupEnv("QRAUTH_" + name); ok {
		return v
	}
	return def
}

// flagEnv reads the QRAUTH_<NAME> defaults of one FlagSet and collects
// those that do not parse, for ParseFlags to return as its error: a CLI
// error is the parser's, never carried in a flow's config.
type flagEnv struct{ bad []string }

// fail records QRAUTH_<name> as malformed; why may be nil.
func (e *flagEnv) fail(name string, why error) {
	s := "QRAUTH_" + name
	if why != nil {
		s += " (" + why.Error() + ")"
	}
	e.bad = append(e.bad, s)
}

func (e *flagEnv) err() error {
	if len(e.bad) == 0 {
		return nil
	}
	return fmt.Errorf("malformed environment variable(s): %s", strings.Join(e.bad, ", "))
}

// duration, int and float read QRAUTH_<NAME> as a default, or def.
func (e *flagEnv) duration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv("QRAUTH_" + name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			e.fail(name, nil)
			return def
		}
		return d
	}
	return def
}

func (e *flagEnv) int(name string, def int) int {
	if v, ok := os.LookupEnv("QRAUTH_" + name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			e.fail(name, nil)
			return def
		}
		return n
	}
	return def
}

func (e *flagEnv) float(name string, def float64) float64 {
	if v, ok := os.LookupEnv("QRAUTH_" + name); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			e.fail(name, nil)
			return def
		}
		return f
	}
	return def
}

// ParseFlags reads flags, falling back to QRAUTH_* environment variables.
// On -h it writes the help to out and returns flag.ErrHelp; on a bad flag
// or environment variable it writes nothing and returns the error, for the
// caller to report in one line.
func (m *Main) ParseFlags(args []string, out io.Writer) error {
	if err := removedFlag(args); err != nil {
		return err
	}
	fs, e := m.flagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(out, fs)
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := e.err(); err != nil {
		return err
	}
	if err := m.applyConfigFile(fs); err != nil {
		return err
	}
	return m.afterParse(fs)
}

// removedFlags are the flags qrauthd no longer has, with why and what
// replaces each. Giving one, as a flag or as QRAUTH_<NAME>, stops the start
// with that message rather than "flag provided but not defined", or, for
// the variable, silently running with a set-up the operator did not mean.
var removedFlags = map[string]string{
	"trust-proxy": "it believed X-Forwarded-For from any private or loopback address, so a client on the local network could forge its address; " +
		"name your proxies with -trusted-proxies CIDR,... (QRAUTH_TRUSTED_PROXIES) instead",
}

// removedFlag reports the first removed flag in args or the environment.
// Every argument before "--" is looked at (qrauthd takes no other
// arguments), so a removed flag after a flag's value is caught too.
func removedFlag(args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if why, ok := removedFlags[name]; ok && strings.HasPrefix(a, "-") {
			return fmt.Errorf("-%s was removed: %s", name, why)
		}
	}
	for name, why := range removedFlags {
		v := "QRAUTH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if _, ok := os.LookupEnv(v); ok {
			return fmt.Errorf("%s (-%s) was removed: %s", v, name, why)
		}
	}
	return nil
}

// flagSet defines every flag of the server on a new FlagSet that prints
// nothing itself (see ParseFlags). The flagEnv holds the environment
// variables that did not parse.
func (m *Main) flagSet() (*flag.FlagSet, *flagEnv) {
	e := &flagEnv{}
	fs := flag.NewFlagSet("qrauthd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&m.Config.Addr, "addr", env("ADDR", server.DefaultAddr), "listen address (QRAUTH_ADDR)")
	fs.StringVar(&m.Config.Origin, "origin", env("ORIGIN", ""), "public origin, e.g. https://login.example.com (QRAUTH_ORIGIN; default http://ADDR)")
	fs.StringVar(&m.DataPath, "data", env("DATA", m.DataPath), "bbolt database file (QRAUTH_DATA)")
	fs.StringVar(&m.StoreURL, "store", env("STORE", ""), "PostgreSQL instead of the -data file, as postgres://USER:PASSWORD@HOST/DB?sslmode=verify-full (QRAUTH_STORE; docs/cluster.md)")
	m.redisFlags(fs)
	fs.StringVar(&m.TLSCert, "tls-cert", env("TLS_CERT", ""), "TLS certificate file; serve HTTPS; reloaded when it or the key changes, and on SIGHUP (QRAUTH_TLS_CERT)")
	fs.StringVar(&m.TLSKey, "tls-key", env("TLS_KEY", ""), "TLS key file (QRAUTH_TLS_KEY)")
	if v := env("ACME_DOMAIN", ""); v != "" {
		if err := m.setACMEDomains(v); err != nil {
			e.fail("ACME_DOMAIN", err)
		}
	}
	m.acmeFlags(fs)
	fs.String("trusted-proxies", env("TRUSTED_PROXIES", ""), "comma-separated address ranges of your reverse proxies, e.g. 10.0.0.0/24,::1; only requests from them have their client address taken from X-Forwarded-For (QRAUTH_TRUSTED_PROXIES)")
	fs.DurationVar(&m.Config.RoomTTL, "room-ttl", e.duration("ROOM_TTL", server.DefaultRoomTTL), "how long a login code page waits for a scan (QRAUTH_ROOM_TTL)")
	fs.DurationVar(&m.Config.PSKRotation, "psk-rotation", e.duration("PSK_ROTATION", server.DefaultPSKRotation), "how often the QR code changes while waiting (QRAUTH_PSK_ROTATION)")
	fs.DurationVar(&m.Config.SessionTTL, "session-ttl", e.duration("SESSION_TTL", server.DefaultSessionTTL), "browser session lifetime (QRAUTH_SESSION_TTL)")
	fs.BoolVar(&m.OIDC, "oidc", env("OIDC", "true") == "true", "serve the OpenID Connect provider (QRAUTH_OIDC)")
	fs.DurationVar(&m.OIDCConfig.KeyGrace, "oidc-key-grace", e.duration("OIDC_KEY_GRACE", oidcflow.DefaultKeyGrace), "how long a rotated OpenID Connect signing key still verifies (QRAUTH_OIDC_KEY_GRACE)")
	fs.DurationVar(&m.Config.TicketTTL, "ticket-ttl", e.duration("TICKET_TTL", server.DefaultTicketTTL), "how long an approved browser has to collect its session (QRAUTH_TICKET_TTL)")
	fs.IntVar(&m.Config.MaxRooms, "max-rooms", e.int("MAX_ROOMS", server.DefaultMaxRooms), "cap on rooms open at once (QRAUTH_MAX_ROOMS)")
	fs.Float64("room-rate", e.float("ROOM_RATE", float64(server.DefaultRoomRate)), "new rooms per second per client IP (QRAUTH_ROOM_RATE)")
	fs.IntVar(&m.Config.RoomBurst, "room-burst", e.int("ROOM_BURST", server.DefaultRoomBurst), "burst of new rooms per client IP (QRAUTH_ROOM_BURST)")
	fs.Float64("app-rate", e.float("APP_RATE", float64(server.DefaultAppRate)), "app connections and app API calls per second per client IP (QRAUTH_APP_RATE)")
	fs.IntVar(&m.Config.AppBurst, "app-burst", e.int("APP_BURST", server.DefaultAppBurst), "burst of app connections per client IP (QRAUTH_APP_BURST)")
	fs.StringVar(&m.AdminSocket, "admin-socket", env("ADMIN_SOCKET", ""), "operator socket for `qrauthd admin` (default: admin.sock next to -data; \"off\" disables) (QRAUTH_ADMIN_SOCKET)")
	fs.StringVar(&m.KeyFile, "key-file", env("KEY_FILE", ""), "file holding the base64 master key that encrypts secrets at rest; or set QRAUTH_KEY; make one with: qrauthd genkey (QRAUTH_KEY_FILE)")
	m.configFlags(fs)
	m.offlineFlags(fs, e)
	fs.DurationVar(&m.Recovery.LinkTTL, "recovery-link-ttl", e.duration("RECOVERY_LINK_TTL", recoveryflow.DefaultLinkTTL), "how long a helpdesk's recovery link code works (QRAUTH_RECOVERY_LINK_TTL)")
	m.oathFlags(fs, e)
	m.badgeFlags(fs, e)
	m.forwardAuthFlags(fs, e)
	fs.StringVar(&m.DebugAddr, "debug-addr", env("DEBUG_ADDR", ""), "serve pprof and /debug/stats on this operator-only address, e.g. 127.0.0.1:6060 (QRAUTH_DEBUG_ADDR)")
	fs.StringVar(&m.MetricsAddr, "metrics-addr", env("METRICS_ADDR", ""), "serve Prometheus /metrics, /healthz and /readyz on this operator-only address, e.g. 127.0.0.1:9090 (QRAUTH_METRICS_ADDR)")
	fs.StringVar(&m.LogLevel, "log-level", env("LOG_LEVEL", m.LogLevel), "debug, info, warn or error (QRAUTH_LOG_LEVEL)")
	fs.StringVar(&m.LogFormat, "log-format", env("LOG_FORMAT", m.LogFormat), "text or json (QRAUTH_LOG_FORMAT)")
	m.CheckOnStart = env("CHECK_ON_START", m.CheckOnStart)
	fs.Var((*checkOnStartFlag)(&m.CheckOnStart), "check-on-start",
		fmt.Sprintf("check the database before serving: true, false, or auto = files up to %d MiB (QRAUTH_CHECK_ON_START)", checkOnStartLimit>>20))
	return fs, e
}

func (m *Main) afterParse(fs *flag.FlagSet) error {
	if err := checkStoreFlag(m.StoreURL); err != nil {
		return err
	}
	if err := m.checkRedisFlags(); err != nil {
		return err
	}
	rate, _ := fs.Lookup("room-rate").Value.(flag.Getter).Get().(float64)
	appRate, _ := fs.Lookup("app-rate").Value.(flag.Getter).Get().(float64)
	trusted, err := server.ParseTrustedProxies(fs.Lookup("trusted-proxies").Value.String())
	if err != nil {
		return fmt.Errorf("-trusted-proxies / QRAUTH_TRUSTED_PROXIES: %w", err)
	}
	if (m.TLSCert == "") != (m.TLSKey == "") {
		return errors.New("give both -tls-cert and -tls-key, or neither")
	}
	if err := m.checkACME(); err != nil {
		return err
	}
	if _, err := parseCheckOnStart(m.CheckOnStart); err != nil {
		return fmt.Errorf("-check-on-start / QRAUTH_CHECK_ON_START: %w", err)
	}
	if rate <= 0 || appRate <= 0 {
		return errors.New("-room-rate and -app-rate must be positive")
	}
	m.Config.RoomRate, m.Config.AppRate = rateLimit(rate), rateLimit(appRate)
	m.Config.TrustedProxies = trusted
	return nil
}

// Run opens the store and starts serving. It returns once the server
// listens.
func (m *Main) Run() error {
	log, err := m.logger()
	if err != nil {
		return err
	}
	m.Config.Logger = log
	raiseOpenFileLimit(log)

	key, err := loadMasterKey(m.KeyFile)
	if err != nil {
		return err
	}
	m.Config.MasterKey = key
	switch m.AdminSocket {
	case "off":
		m.Config.AdminSocket = ""
	case "":
		m.Config.AdminSocket = defaultAdminSocket(m.DataPath)
	default:
		m.Config.AdminSocket = m.AdminSocket
	}

	// The metrics exist only when they are served: without them the
	// server's hooks are no-ops.
	var mx *metrics.Metrics
	var storeObs store.Observer = auditLog{log: log}
	if m.MetricsAddr != "" {
		mx = metrics.New()
		m.Config.Metrics = mx
		storeObs = auditLog{log: log, next: mx}
	}
	// Redis first: it is quick to ask, and a cluster instance that cannot
	// reach it should fail before it migrates or opens anything else.
	sh, err := m.openShared(log)
	if err != nil {
		return err
	}
	if sh != nil {
		m.Config.Shared = sh
	}
	db, bolt, err := m.openStore(log, storeObs)
	if err != nil {
		if sh != nil {
			sh.Close()
		}
		return err
	}
	m.Store, m.DB, m.Shared = db, bolt, sh
	closeStores := func() {
		if sh != nil {
			sh.Close()
		}
		db.Close()
	}
	flows, err := m.flows(db)
	if err != nil {
		closeStores()
		return err
	}
	var acmeConf *tls.Config // before New: it may set the default origin
	if len(m.ACME.Domains) > 0 {
		acmeConf = m.acmeTLS()
	}
	srv, err := server.New(m.Config, db, flows...)
	if err != nil {
		closeStores()
		return err
	}
	srv.TLSCertFile, srv.TLSKeyFile = m.TLSCert, m.TLSKey
	srv.TLSConfig = acmeConf
	if err := srv.Open(); err != nil {
		closeStores()
		return err
	}
	m.Server = srv
	if m.DebugAddr != "" {
		if err := m.serveDebug(log); err != nil {
			// Run fails, so the caller will not call Close: do it here
			// (Close may still be called; it does nothing more).
			m.Close()
			return fmt.Errorf("debug server: %w", err)
		}
	}
	if mx != nil {
		if err := m.serveMetrics(log, mx); err != nil {
			m.Close()
			return fmt.Errorf("metrics server: %w", err)
		}
	}
	return nil
}

// logger is the logger -log-level and -log-format ask for, writing to
// LogOutput.
func (m *Main) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(m.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", m.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(m.LogFormat) {
	case "json":
		return slog.New(slog.NewJSONHandler(m.LogOutput, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(m.LogOutput, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", m.LogFormat)
}

// Close shuts the server down gracefully, then closes the shared state
// and the database that Run opened (the server closes neither).
func (m *Main) Close() error {
	if m.Server == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.ShutdownGrace)
	defer cancel()
	if m.debug != nil {
		m.debug.Close()
	}
	err := m.Server.Shutdown(ctx)
	if m.metrics != nil {
		// Closed after the server, so that /readyz there says 503 for
		// as long as the public listener drains.
		m.metrics.Close()
	}
	var shErr error
	if m.Shared != nil {
		shErr = m.Shared.Close()
	}
	return errors.Join(err, shErr, m.Store.Close())
}
