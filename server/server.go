package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/tlsreload"
	"github.com/qrauth/qrauth/wire"
)

// Server is a running qrauth instance: an HTTP listener and the hub of
// rooms over a store. Create it with New, start it with Open, stop it with
// Shutdown. The store stays its caller's: the server never closes it.
type Server struct {
	cfg   Config
	store qrauth.Store
	log   *slog.Logger

	ln      net.Listener
	http    *http.Server
	admin   *http.Server // the operator's Unix socket, when configured
	echo    *echo.Echo
	hub     *hub
	rooms   *Limiter // room creation per IP
	apps    *Limiter // app sockets and app API calls per IP
	codes   codeGuard
	seen    *nonceCache
	pending pendingStore
	flows   []Flow

	limitersMu sync.Mutex
	limiters   []*Limiter // the flows' (Host.NewLimiter), purged by the janitor

	bindMu sync.Mutex
	bindK  []byte // the bind cookie's MAC key, see bindKey

	upgrader websocket.Upgrader
	conns    sync.WaitGroup // live sockets, drained at shutdown
	stop     chan struct{}
	stopped  chan struct{}
	served   chan error
	// clusterDone is closed when the cluster loop (Config.Shared set) has
	// ended and no longer uses the shared state.
	clusterDone chan struct{}

	shutdownOnce sync.Once
	shutdownErr  error
	draining     atomic.Bool // Shutdown has begun: /readyz answers 503

	// TLSCertFile and TLSKeyFile, when both are set, make Open serve HTTPS
	// with the pair, reloaded when the files change (internal/tlsreload).
	TLSCertFile, TLSKeyFile string
	// TLSConfig, when set instead, makes Open serve HTTPS with it (ACME's,
	// which answers TLS-ALPN-01 challenges on this listener).
	TLSConfig *tls.Config
	certs     *tlsreload.Pair // from TLSCertFile and TLSKeyFile
}

// New checks cfg and prepares a server over store with the given flows, in
// the order their sign-in gates run. It does not listen yet.
func New(cfg Config, store qrauth.Store, flows ...Flow) (*Server, error) {
	if store == nil {
		return nil, errors.New("server: nil store")
	}
	origin := cfg.Origin
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if origin == "" {
		cfg.Origin = "" // decided by Open from the real listen address
	}
	seen := map[string]bool{}
	for _, f := range flows {
		if f == nil || seen[f.Name()] {
			return nil, fmt.Errorf("server: flow %v listed twice or nil", f)
		}
		seen[f.Name()] = true
	}
	return &Server{cfg: cfg, store: store, log: cfg.Logger, flows: flows}, nil
}

// Open listens on cfg.Addr and serves in the background. With port 0 the
// system picks a port; without a configured Origin it becomes
// http://ADDR of the real listener.
func (s *Server) Open() error {
	tlsConf := s.TLSConfig
	if tlsConf == nil && s.TLSCertFile != "" && s.TLSKeyFile != "" {
		// Loaded before listening: a bad pair is refused at start, with the
		// files named, rather than by every handshake.
		pair, err := tlsreload.Load(s.TLSCertFile, s.TLSKeyFile, s.log)
		if err != nil {
			return err
		}
		s.certs = pair
		tlsConf = &tls.Config{GetCertificate: pair.GetCertificate}
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	if s.cfg.Origin == "" {
		scheme := "http"
		if tlsConf != nil {
			scheme = "https"
		}
		s.cfg.Origin = scheme + "://" + ln.Addr().String()
	}
	s.ln = ln
	if err := s.build(); err != nil {
		ln.Close()
		return err
	}
	s.http = &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConf,
	}
	s.served = make(chan error, 1)
	go func() {
		var err error
		if tlsConf != nil {
			// The certificates come from tlsConf; ServeTLS adds h2 and
			// http/1.1 to its NextProtos.
			err = s.http.ServeTLS(ln, "", "")
		} else {
			err = s.http.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.served <- err
	}()
	s.log.Info("qrauth listening", slog.String("addr", ln.Addr().String()), slog.String("origin", s.cfg.Origin))
	if s.cfg.AdminSocket != "" {
		if err := s.openAdminSocket(s.cfg.AdminSocket); err != nil {
			s.http.Close()
			return err
		}
	}
	return nil
}

// ReloadTLS reads TLSCertFile and TLSKeyFile again now, whether or not
// they look changed (cmd/qrauthd calls it on SIGHUP). On failure the
// previous pair stays in service, a warning is logged and the error says
// why. Without those files (plain HTTP, or TLSConfig) there is nothing to
// reload and it returns nil.
func (s *Server) ReloadTLS() error {
	if s.certs == nil {
		return nil
	}
	return s.certs.Reload()
}

// Addr returns the listen address once Open has succeeded.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Origin returns the public origin in effect.
func (s *Server) Origin() string { return s.cfg.Origin }

func (s *Server) build() error {
	s.hub = newHub(s.cfg, s.store)
	// The rooms limiter is peeked by the socket probe, the typed codes'
	// before each lookup (newLimiter).
	s.rooms = s.newLimiter("rooms", s.cfg.RoomRate, s.cfg.RoomBurst, true)
	s.apps = s.newLimiter("app", s.cfg.AppRate, s.cfg.AppBurst, false)
	s.codes = codeGuard{perIP: s.newLimiter("code_ip", s.cfg.CodeRate, s.cfg.CodeBurst, true),
		global: s.newLimiter("code_global", s.cfg.CodeGlobalRate, s.cfg.CodeGlobalBurst, true)}
	s.seen = newNonceCache()
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   512,
		WriteBufferSize:  1024,
		WriteBufferPool:  &sync.Pool{},
		// Origins are checked before the upgrade, with a clear error.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	s.stop = make(chan struct{})
	s.stopped = make(chan struct{})

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Logger.SetOutput(discard{})
	e.IPExtractor = clientIPExtractor(s.cfg.TrustedProxies)
	e.Use(s.recoverPanics, s.logRequests, s.securityHeaders, middleware.BodyLimit("16K"), s.checkUnsafeOrigin)
	s.echo = e
	if err := s.routes(e); err != nil {
		return err
	}
	go s.janitor()
	if s.cfg.Shared != nil {
		s.clusterDone = make(chan struct{})
		go func() {
			defer close(s.clusterDone)
			s.hub.runCluster(s.stop)
		}()
	}
	return nil
}

func (s *Server) routes(e *echo.Echo) error {
	e.GET(wire.PathLogin, s.handleLoginPage)
	e.GET(wire.PathAccount, s.handleAccountPage)
	e.GET(wire.PathScan, s.handleScanPage)
	e.GET(wire.PathStatic, s.handleStatic)
	e.GET(wire.PathFavicon, s.handleFavicon)
	e.GET(wire.PathHealth, s.handleHealth)
	e.GET(wire.PathReady, s.handleReady)
	e.GET(wire.PathDiscovery, s.handleDiscovery)

	e.GET(wire.PathBrowserSocket, s.handleBrowserSocket)
	e.GET(wire.PathAppSocket, s.handleAppSocket)

	e.POST(wire.PathSession, s.handleCreateSession)
	e.GET(wire.PathPendingSignIn, s.handlePendingSignIn)
	e.GET(wire.PathMe, s.handleMe)
	e.PATCH(wire.PathMe, s.handleUpdateProfile)
	e.POST(wire.PathLogout, s.handleLogout)
	e.GET(wire.PathSessions, s.handleListSessions)
	e.DELETE(wire.PathSessionByID, s.handleDeleteSession)
	e.GET(wire.PathDevices, s.handleListDevices)
	e.DELETE(wire.PathDeviceByID, s.handleDeleteDevice)

	e.GET(wire.PathAppSessions, s.handleAppListSessions)
	e.DELETE(wire.PathAppSessionByID, s.handleAppDeleteSession)
	e.POST(wire.PathAppCode, s.handleAppCode)

	s.adminRoutes(e)
	// The phone web app: static files and three paths (phoneapp.go).
	s.phoneAppRoutes(e)
	for _, f := range s.flows {
		if err := f.Mount(host{s}, e); err != nil {
			return fmt.Errorf("flow %s: %w", f.Name(), err)
		}
	}
	return nil
}

// janitor drops expired tickets, idle rate-limit buckets, old nonces and
// expired sessions.
func (s *Server) janitor() {
	defer close(s.stopped)
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	var lastSweep time.Time
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep(&lastSweep)
		}
	}
}

// sweep is one round of the janitor. A panic in it (a damaged database
// page) is logged and the janitor carries on at the next tick: the process
// must not end over it.
func (s *Server) sweep(lastSweep *time.Time) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("janitor panicked", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	now := s.cfg.Now()
	s.hub.purge(now)
	s.rooms.purge(now)
	s.apps.purge(now)
	s.codes.perIP.purge(now)
	s.codes.global.purge(now)
	s.seen.purge(now)
	s.pending.purge(now)
	s.limitersMu.Lock()
	limiters := s.limiters
	s.limitersMu.Unlock()
	for _, l := range limiters {
		l.purge(now)
	}
	for _, f := range s.flows {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		f.Purge(ctx, now)
		cancel()
	}
	if now.Sub(*lastSweep) > 10*time.Minute {
		*lastSweep = now
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if n, err := s.store.DeleteExpiredSessions(ctx, now); err != nil {
			s.log.Error("session sweep failed", slog.Any("err", err))
		} else if n > 0 {
			s.log.Info("expired sessions removed", slog.Int("count", n))
		}
	}
}

// Shutdown stops accepting connections, tells every browser to reconnect,
// and waits (until ctx ends) for sockets, requests and background work to
// finish, so that nothing uses the store any more: the caller, who opened
// the store, closes it afterwards. Calling it again returns the first
// call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	// First of all, so that a load balancer polling /readyz (here or on
	// the metrics listener) stops sending new people while the rest drains.
	s.draining.Store(true)
	var errs []error
	for _, f := range s.flows {
		f.Shutdown()
	}
	if s.http != nil {
		// http.Server.Shutdown ignores hijacked WebSocket connections; the
		// hub closes those.
		s.http.SetKeepAlivesEnabled(false)
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.admin != nil {
		if err := s.admin.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		os.Remove(s.cfg.AdminSocket)
	}
	if s.hub != nil {
		s.hub.shutdown()
		done := make(chan struct{})
		go func() { s.conns.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("sockets still open: %w", ctx.Err()))
		}
		close(s.stop)
		<-s.stopped
		if s.clusterDone != nil {
			// The caller may close Config.Shared once Shutdown returns.
			select {
			case <-s.clusterDone:
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("shared state still in use: %w", ctx.Err()))
			}
		}
	}
	if s.served != nil {
		if err := <-s.served; err != nil {
			errs = append(errs, err)
		}
	}
	s.log.Info("qrauth stopped")
	return errors.Join(errs...)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Routes returns the routes registered once the server is open: the core's
// and its flows' (a test compares them with docs/protocol.md).
func (s *Server) Routes() []*echo.Route { return s.echo.Routes() }

// Rooms returns the number of rooms open now.
func (s *Server) Rooms() int { return s.hub.roomCount() }
