// Command qrauthd runs the qrauth login service: one binary, an embedded
// bbolt database, listening on 127.0.0.1:8080 unless told otherwise.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/server/oidcflow"
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
	DataPath      string
	Config        server.Config
	TLSCert       string
	TLSKey        string
	LogLevel      string
	LogFormat     string
	ShutdownGrace time.Duration
	LogOutput     io.Writer
	DebugAddr     string
	AdminSocket   string
	KeyFile       string
	// CheckOnStart is "auto" (check files up to checkOnStartLimit), "true"
	// or "false": whether Run checks the database before serving.
	CheckOnStart string
	// OIDC switches the OpenID Connect provider (on by default); OIDCConfig
	// tunes it.
	OIDC       bool
	OIDCConfig oidcflow.Config

	debug *http.Server

	Server *server.Server
	DB     *store.DB
}

// NewMain returns a Main with the defaults.
func NewMain() *Main {
	return &Main{DataPath: filepath.Join("data", "qrauth.db"), LogLevel: "info", LogFormat: "text",
		ShutdownGrace: 15 * time.Second, LogOutput: os.Stderr, CheckOnStart: "auto", OIDC: true}
}

// env returns the environment variable QRAUTH_<NAME> or def, so every flag
// can also come from the environment (flags win).
func env(name, def string) string {
	if v, ok := os.LookupEnv("QRAUTH_" + name); ok {
		return v
	}
	return def
}

// envDuration, envInt and envFloat read QRAUTH_<NAME> as a default; a
// malformed value is reported by ParseFlags through badEnv.
func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv("QRAUTH_" + name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			badEnv = append(badEnv, "QRAUTH_"+name)
			return def
		}
		return d
	}
	return def
}

func envInt(name string, def int) int {
	if v, ok := os.LookupEnv("QRAUTH_" + name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			badEnv = append(badEnv, "QRAUTH_"+name)
			return def
		}
		return n
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, ok := os.LookupEnv("QRAUTH_" + name); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			badEnv = append(badEnv, "QRAUTH_"+name)
			return def
		}
		return f
	}
	return def
}

// badEnv collects the malformed QRAUTH_* variables met while ParseFlags
// defines its flags. ParseFlags empties it first and holds parseMu, so one
// run's bad environment does not fail the next.
var (
	parseMu sync.Mutex
	badEnv  []string
)

// ParseFlags reads flags, falling back to QRAUTH_* environment variables.
// On -h it writes the help to out and returns flag.ErrHelp; on a bad flag
// it writes nothing and returns the error, for the caller to report in one
// line.
func (m *Main) ParseFlags(args []string, out io.Writer) error {
	parseMu.Lock()
	defer parseMu.Unlock()
	badEnv = nil
	fs := m.flagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(out, fs)
		}
		return err
	}
	return m.afterParse(fs)
}

// flagSet defines every flag of the server on a new FlagSet that prints
// nothing itself (see ParseFlags).
func (m *Main) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("qrauthd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&m.Config.Addr, "addr", env("ADDR", "127.0.0.1:8080"), "listen address (QRAUTH_ADDR)")
	fs.StringVar(&m.Config.Origin, "origin", env("ORIGIN", ""), "public origin, e.g. https://login.example.com (QRAUTH_ORIGIN; default http://ADDR)")
	fs.StringVar(&m.DataPath, "data", env("DATA", m.DataPath), "bbolt database file (QRAUTH_DATA)")
	fs.StringVar(&m.TLSCert, "tls-cert", env("TLS_CERT", ""), "TLS certificate file; serve HTTPS (QRAUTH_TLS_CERT)")
	fs.StringVar(&m.TLSKey, "tls-key", env("TLS_KEY", ""), "TLS key file (QRAUTH_TLS_KEY)")
	fs.Bool("trust-proxy", env("TRUST_PROXY", "") == "true", "take client addresses from X-Forwarded-For set by a proxy on a private address (QRAUTH_TRUST_PROXY=true)")
	fs.DurationVar(&m.Config.RoomTTL, "room-ttl", envDuration("ROOM_TTL", 3*time.Minute), "how long a login code page waits for a scan (QRAUTH_ROOM_TTL)")
	fs.DurationVar(&m.Config.PSKRotation, "psk-rotation", envDuration("PSK_ROTATION", 30*time.Second), "how often the QR code changes while waiting (QRAUTH_PSK_ROTATION)")
	fs.DurationVar(&m.Config.SessionTTL, "session-ttl", envDuration("SESSION_TTL", 14*24*time.Hour), "browser session lifetime (QRAUTH_SESSION_TTL)")
	fs.BoolVar(&m.OIDC, "oidc", env("OIDC", "true") == "true", "serve the OpenID Connect provider (QRAUTH_OIDC)")
	fs.DurationVar(&m.OIDCConfig.KeyGrace, "oidc-key-grace", envDuration("OIDC_KEY_GRACE", 24*time.Hour), "how long a rotated OpenID Connect signing key still verifies (QRAUTH_OIDC_KEY_GRACE)")
	fs.DurationVar(&m.Config.TicketTTL, "ticket-ttl", envDuration("TICKET_TTL", 10*time.Second), "how long an approved browser has to collect its session (QRAUTH_TICKET_TTL)")
	fs.IntVar(&m.Config.MaxRooms, "max-rooms", envInt("MAX_ROOMS", 50000), "cap on rooms open at once (QRAUTH_MAX_ROOMS)")
	fs.Float64("room-rate", envFloat("ROOM_RATE", 1), "new rooms per second per client IP (QRAUTH_ROOM_RATE)")
	fs.IntVar(&m.Config.RoomBurst, "room-burst", envInt("ROOM_BURST", 20), "burst of new rooms per client IP (QRAUTH_ROOM_BURST)")
	fs.Float64("app-rate", envFloat("APP_RATE", 5), "app connections and app API calls per second per client IP (QRAUTH_APP_RATE)")
	fs.IntVar(&m.Config.AppBurst, "app-burst", envInt("APP_BURST", 30), "burst of app connections per client IP (QRAUTH_APP_BURST)")
	fs.StringVar(&m.AdminSocket, "admin-socket", env("ADMIN_SOCKET", ""), "operator socket for `qrauthd admin` (default: admin.sock next to -data; \"off\" disables) (QRAUTH_ADMIN_SOCKET)")
	fs.StringVar(&m.KeyFile, "key-file", env("KEY_FILE", ""), "file holding the base64 master key that encrypts secrets at rest; or set QRAUTH_KEY; make one with: qrauthd genkey (QRAUTH_KEY_FILE)")
	m.offlineFlags(fs)
	m.oathFlags(fs)
	m.badgeFlags(fs)
	fs.StringVar(&m.DebugAddr, "debug-addr", env("DEBUG_ADDR", ""), "serve pprof and /debug/stats on this operator-only address, e.g. 127.0.0.1:6060 (QRAUTH_DEBUG_ADDR)")
	fs.StringVar(&m.LogLevel, "log-level", env("LOG_LEVEL", m.LogLevel), "debug, info, warn or error (QRAUTH_LOG_LEVEL)")
	fs.StringVar(&m.LogFormat, "log-format", env("LOG_FORMAT", m.LogFormat), "text or json (QRAUTH_LOG_FORMAT)")
	m.CheckOnStart = env("CHECK_ON_START", m.CheckOnStart)
	fs.Var((*checkOnStartFlag)(&m.CheckOnStart), "check-on-start",
		fmt.Sprintf("check the database before serving: true, false, or auto = files up to %d MiB (QRAUTH_CHECK_ON_START)", checkOnStartLimit>>20))
	return fs
}

func (m *Main) afterParse(fs *flag.FlagSet) error {
	rate, _ := fs.Lookup("room-rate").Value.(flag.Getter).Get().(float64)
	appRate, _ := fs.Lookup("app-rate").Value.(flag.Getter).Get().(float64)
	trust, _ := fs.Lookup("trust-proxy").Value.(flag.Getter).Get().(bool)
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if len(badEnv) > 0 {
		return fmt.Errorf("malformed environment variable(s): %s", strings.Join(badEnv, ", "))
	}
	if (m.TLSCert == "") != (m.TLSKey == "") {
		return errors.New("give both -tls-cert and -tls-key, or neither")
	}
	if _, err := parseCheckOnStart(m.CheckOnStart); err != nil {
		return fmt.Errorf("-check-on-start / QRAUTH_CHECK_ON_START: %w", err)
	}
	if rate <= 0 || appRate <= 0 {
		return errors.New("-room-rate and -app-rate must be positive")
	}
	m.Config.RoomRate, m.Config.AppRate = rateLimit(rate), rateLimit(appRate)
	m.Config.TrustProxy = trust
	return nil
}

// Run opens the store and starts serving. It returns once the server
// listens.
func (m *Main) Run() error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(m.LogLevel)); err != nil {
		return fmt.Errorf("log level %q: want debug, info, warn or error", m.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch strings.ToLower(m.LogFormat) {
	case "json":
		h = slog.NewJSONHandler(m.LogOutput, opts)
	case "text":
		h = slog.NewTextHandler(m.LogOutput, opts)
	default:
		return fmt.Errorf("log format %q: want text or json", m.LogFormat)
	}
	log := slog.New(h)
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
		m.Config.AdminSocket = filepath.Join(filepath.Dir(m.DataPath), "admin.sock")
	default:
		m.Config.AdminSocket = m.AdminSocket
	}

	db, err := store.Open(m.DataPath, store.Options{})
	if errors.Is(err, store.ErrDamaged) {
		return fmt.Errorf("database: %w\nRestore the file from a backup; `qrauthd check FILE` lists what is wrong with it", err)
	} else if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := m.checkOnStart(db, log); err != nil {
		db.Close()
		return err
	}
	m.DB = db
	flows := server.BuiltinFlows()
	if m.OIDC {
		flows = append(flows, oidcflow.New(m.OIDCConfig, db)) // last: its gate runs after the others'
	}
	srv, err := server.New(m.Config, db, flows...)
	if err != nil {
		db.Close()
		return err
	}
	srv.TLSCertFile, srv.TLSKeyFile = m.TLSCert, m.TLSKey
	if err := srv.Open(); err != nil {
		db.Close()
		return err
	}
	m.Server = srv
	log.Info("database open", slog.String("path", m.DataPath))
	if m.DebugAddr != "" {
		if err := m.serveDebug(log); err != nil {
			return fmt.Errorf("debug server: %w", err)
		}
	}
	return nil
}

// Close shuts the server down gracefully and closes the database.
func (m *Main) Close() error {
	if m.Server == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.ShutdownGrace)
	defer cancel()
	if m.debug != nil {
		m.debug.Close()
	}
	return m.Server.Shutdown(ctx)
}
