package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/qrauth/qrauth"
)

// Server is a running qrauth instance: an HTTP listener, the hub of rooms
// and the store. Create it with New, start it with Open, stop it with
// Shutdown.
type Server struct {
	cfg   Config
	store qrauth.Store
	log   *slog.Logger

	ln      net.Listener
	http    *http.Server
	admin   *http.Server // the operator's Unix socket, when configured
	echo    *echo.Echo
	hub     *hub
	rooms   *limiter // room creation per IP
	apps    *limiter // app sockets and app API calls per IP
	seen    *nonceCache
	pending pendingStore

	bindMu sync.Mutex
	bindK  []byte // the bind cookie's MAC key, see bindKey

	upgrader websocket.Upgrader
	conns    sync.WaitGroup // live sockets, drained at shutdown
	stop     chan struct{}
	stopped  chan struct{}
	served   chan error

	shutdownOnce sync.Once
	shutdownErr  error

	// TLSCertFile and TLSKeyFile, when both are set, make Open serve HTTPS.
	TLSCertFile, TLSKeyFile string
}

// New checks cfg and prepares a server over store. It does not listen yet.
func New(cfg Config, store qrauth.Store) (*Server, error) {
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
	return &Server{cfg: cfg, store: store, log: cfg.Logger}, nil
}

// Open listens on cfg.Addr and serves in the background. With port 0 the
// system picks a port; without a configured Origin it becomes
// http://ADDR of the real listener.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	if s.cfg.Origin == "" {
		scheme := "http"
		if s.TLSCertFile != "" {
			scheme = "https"
		}
		s.cfg.Origin = scheme + "://" + ln.Addr().String()
	}
	s.ln = ln
	s.build()
	s.http = &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.served = make(chan error, 1)
	go func() {
		var err error
		if s.TLSCertFile != "" && s.TLSKeyFile != "" {
			err = s.http.ServeTLS(ln, s.TLSCertFile, s.TLSKeyFile)
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

// Addr returns the listen address once Open has succeeded.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Origin returns the public origin in effect.
func (s *Server) Origin() string { return s.cfg.Origin }

// Handler returns the HTTP handler, for serving it on a listener of your
// own. Open calls it; call it yourself only instead of Open, after setting
// cfg.Origin.
func (s *Server) Handler() http.Handler {
	if s.echo == nil {
		s.build()
	}
	return s.echo
}

func (s *Server) build() {
	s.hub = newHub(s.cfg, s.store)
	s.rooms = newLimiter(s.cfg.RoomRate, s.cfg.RoomBurst)
	s.apps = newLimiter(s.cfg.AppRate, s.cfg.AppBurst)
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
	go s.janitor()

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Logger.SetOutput(discard{})
	if s.cfg.TrustProxy {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	} else {
		e.IPExtractor = echo.ExtractIPDirect()
	}
	e.Use(s.recoverPanics, s.logRequests, s.securityHeaders, middleware.BodyLimit("16K"), s.checkUnsafeOrigin)
	s.echo = e
	s.routes(e)
}

func (s *Server) routes(e *echo.Echo) {
	e.GET("/", s.handleLoginPage)
	e.GET("/account", s.handleAccountPage)
	e.GET("/q/:psk", s.handleScanPage)
	e.GET("/static/*", s.handleStatic)
	e.GET("/favicon.ico", s.handleFavicon)
	e.GET("/healthz", s.handleHealth)
	e.GET("/.well-known/qrauth", s.handleDiscovery)

	e.GET("/ws/browser", s.handleBrowserSocket)
	e.GET("/ws/app", s.handleAppSocket)

	e.POST("/api/session", s.handleCreateSession)
	e.GET("/api/signin/pending", s.handlePendingSignIn)
	e.GET("/api/me", s.handleMe)
	e.PATCH("/api/me", s.handleUpdateProfile)
	e.POST("/api/logout", s.handleLogout)
	e.GET("/api/sessions", s.handleListSessions)
	e.DELETE("/api/sessions/:id", s.handleDeleteSession)
	e.GET("/api/devices", s.handleListDevices)
	e.DELETE("/api/devices/:id", s.handleDeleteDevice)

	e.GET("/api/app/sessions", s.handleAppListSessions)
	e.DELETE("/api/app/sessions/:id", s.handleAppDeleteSession)

	s.adminRoutes(e)
	// The flows beside the core, each in its own files.
	s.offlineRoutes(e)
	s.oathRoutes(e)
	s.badgeRoutes(e)
	// The phone web app: static files and three paths (phoneapp.go).
	s.phoneAppRoutes(e)
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
			now := s.cfg.Now()
			s.hub.purge(now)
			s.rooms.purge(now)
			s.apps.purge(now)
			s.seen.purge(now)
			s.pending.purge(now)
			if now.Sub(lastSweep) > 10*time.Minute {
				lastSweep = now
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				if n, err := s.store.DeleteExpiredSessions(ctx, now); err != nil {
					s.log.Error("session sweep failed", slog.Any("err", err))
				} else if n > 0 {
					s.log.Info("expired sessions removed", slog.Int("count", n))
				}
				cancel()
			}
		}
	}
}

// Shutdown stops accepting connections, tells every browser to reconnect,
// waits (until ctx ends) for sockets and requests to finish, and closes the
// store so that everything written is flushed.
// Calling it again returns the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	var errs []error
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
	}
	if s.served != nil {
		if err := <-s.served; err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, err)
	}
	s.log.Info("qrauth stopped")
	return errors.Join(errs...)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Rooms returns the number of rooms open now.
func (s *Server) Rooms() int { return s.hub.roomCount() }
