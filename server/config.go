package server

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/qrauth/qrauth/shared"
	"golang.org/x/net/publicsuffix"
	"golang.org/x/time/rate"
)

// The defaults of Config: what a zero field means. They are defined here
// once; cmd/qrauthd's flags default to them and README's table is checked
// against those flags.
const (
	DefaultAddr        = "127.0.0.1:8080"
	DefaultPSKRotation = 30 * time.Second
	DefaultRoomTTL     = 3 * time.Minute
	DefaultTicketTTL   = 10 * time.Second
	DefaultRoomRecheck = 2 * time.Second
	DefaultSessionTTL  = 14 * 24 * time.Hour
	DefaultMaxRooms    = 50000
	DefaultRoomRate    = rate.Limit(1)
	DefaultRoomBurst   = 20
	DefaultAppRate     = rate.Limit(5)
	DefaultAppBurst    = 30
	// Wrong typed codes: per client IP one a minute after a burst of 5,
	// and for the whole instance one every 30 s after a burst of 20. The
	// global rate bounds how fast anyone, from any number of addresses,
	// can guess (docs/threat-model.md, T2b).
	DefaultCodeRate        = rate.Limit(1.0 / 60)
	DefaultCodeBurst       = 5
	DefaultCodeGlobalRate  = rate.Limit(1.0 / 30)
	DefaultCodeGlobalBurst = 20
)

// Config configures a Server. The zero value of every field means its
// default (the Default* constants), so Config{} is a working local set-up.
type Config struct {
	// Addr is the listen address. Default DefaultAddr.
	Addr string
	// Origin is the public origin browsers use, such as
	// "https://login.example.com". Default "http://" + Addr. It goes into
	// every QR code and every signed decision, and WebSocket upgrades from
	// any other Origin are refused.
	Origin string
	// CookieDomain, when set, is the Domain attribute of the session
	// cookie, such as "example.com": one sign-in then covers every host
	// below it (app.example.com behind a proxy's forward auth). It must
	// contain the origin's host and must not be a public suffix. Empty
	// means a host-only cookie. The bind and pending cookies stay host-only
	// whatever this says: only the login host ever reads them.
	CookieDomain string
	// TrustedProxies are the address ranges of the reverse proxies in
	// front of the server (ParseTrustedProxies reads them). A request from
	// one of them has its client address taken from X-Forwarded-For: the
	// right-most address there that is not itself in these ranges. Empty
	// means the TCP peer is the client, whatever the header says.
	TrustedProxies []netip.Prefix

	// PSKRotation is how long one QR code is valid while a room waits.
	// Default 30s.
	PSKRotation time.Duration
	// RoomTTL bounds how long a room waits for a scan and decision.
	// Default 3m.
	RoomTTL time.Duration
	// TicketTTL is how long a browser has to exchange its ticket. Default 10s.
	TicketTTL time.Duration
	// SessionTTL is the lifetime of a browser session. Default 14 days.
	SessionTTL time.Duration

	// MaxRooms caps the rooms open at once on this instance. Default 50000.
	MaxRooms int
	// RoomRate and RoomBurst limit room creation per client IP. Default
	// 1/s with a burst of 20. rate.Inf disables the limit.
	RoomRate  rate.Limit
	RoomBurst int
	// AppRate and AppBurst limit app sockets and app API calls per client
	// IP. Default 5/s with a burst of 30.
	AppRate  rate.Limit
	AppBurst int
	// CodeRate and CodeBurst limit wrong typed codes (POST
	// /api/app/code) per client IP; CodeGlobalRate and CodeGlobalBurst
	// limit them for the whole instance. Defaults: 1 a minute with a
	// burst of 5, and 1 per 30 s with a burst of 20.
	CodeRate        rate.Limit
	CodeBurst       int
	CodeGlobalRate  rate.Limit
	CodeGlobalBurst int

	// Now and Rand default to time.Now and crypto/rand.Reader; tests
	// replace them.
	Now  func() time.Time
	Rand io.Reader
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Locator names the approximate place of an address. Default: loopback
	// and private ranges only.
	Locator Locator
	// Metrics receives counts and timings for the operator (see Metrics).
	// Default: none.
	Metrics Metrics

	// AdminSocket is the path of the operator's Unix socket for
	// `qrauthd admin`; empty disables it.
	AdminSocket string
	// MasterKey is the operator's 32-byte key that encrypts secrets at rest
	// (OATH secrets, offline keys) and seals badges. Flows that need it
	// refuse to start without it.
	MasterKey []byte

	// Shared is the short-lived state several instances share (a cluster,
	// docs/cluster.md): the PSK and user-code indexes, tickets, rooms that
	// a phone on another instance joined, app-request nonces, pending
	// sign-ins and rate limits. Nil, the default, is one instance alone:
	// all of it stays in this process's memory, exactly as before clusters
	// existed. The server does not close it.
	Shared shared.Store
	// InstanceID names this instance in the shared state (which instance
	// holds a room's browser). Default: random per start. It must be new
	// at every start: an instance restarted under its old id would keep
	// its alive key, so the phones relayed to its lost rooms would wait
	// for the rooms to expire instead of hearing room_gone.
	InstanceID string
	// RoomRecheck is how often an instance re-reads, on its own, the shared
	// record of a room that spans two instances, so that a lost pub/sub
	// hint delays a phone's step by at most this. Default 2s; only used
	// with Shared.
	RoomRecheck time.Duration

	// The flows beside the core.
}

func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Origin == "" {
		c.Origin = "http://" + c.Addr
	}
	u, err := url.Parse(c.Origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return c, fmt.Errorf("origin %q: want scheme://host[:port] with no path, such as https://login.example.com", c.Origin)
	}
	c.Origin = strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
	if c.CookieDomain, err = checkCookieDomain(c.CookieDomain, u.Hostname()); err != nil {
		return c, err
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			return c, fmt.Errorf("trusted proxies: %v is not an address range", p)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.PSKRotation, DefaultPSKRotation)
	def(&c.RoomTTL, DefaultRoomTTL)
	def(&c.TicketTTL, DefaultTicketTTL)
	def(&c.SessionTTL, DefaultSessionTTL)
	if c.PSKRotation < 0 || c.RoomTTL < 0 || c.TicketTTL < 0 || c.SessionTTL < 0 {
		return c, fmt.Errorf("durations must be positive")
	}
	if c.MaxRooms == 0 {
		c.MaxRooms = DefaultMaxRooms
	}
	if c.RoomRate == 0 {
		c.RoomRate = DefaultRoomRate
	}
	if c.RoomBurst == 0 {
		c.RoomBurst = DefaultRoomBurst
	}
	if c.AppRate == 0 {
		c.AppRate = DefaultAppRate
	}
	if c.AppBurst == 0 {
		c.AppBurst = DefaultAppBurst
	}
	if c.CodeRate == 0 {
		c.CodeRate = DefaultCodeRate
	}
	if c.CodeBurst == 0 {
		c.CodeBurst = DefaultCodeBurst
	}
	if c.CodeGlobalRate == 0 {
		c.CodeGlobalRate = DefaultCodeGlobalRate
	}
	if c.CodeGlobalBurst == 0 {
		c.CodeGlobalBurst = DefaultCodeGlobalBurst
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Locator == nil {
		c.Locator = LocalLocator{}
	}
	if c.Metrics == nil {
		c.Metrics = nopMetrics{}
	}
	if c.InstanceID == "" {
		// Not from c.Rand: tests that fix Rand's stream expect it untouched.
		id, err := randomInstanceID(rand.Reader)
		if err != nil {
			return c, err
		}
		c.InstanceID = id
	}
	def(&c.RoomRecheck, DefaultRoomRecheck)
	if c.RoomRecheck < 0 {
		return c, fmt.Errorf("room re-check: must be positive")
	}
	if c.MasterKey != nil && len(c.MasterKey) != 32 {
		return c, fmt.Errorf("master key: want 32 bytes, got %d (make one with `qrauthd genkey`)", len(c.MasterKey))
	}

	return c, nil
}

// checkCookieDomain normalises a cookie domain ("Example.COM." and
// ".example.com" are example.com) and checks that a browser will accept it
// from originHost: a registrable domain containing that host, not an
// address, not a public suffix such as "com" or "co.uk".
func checkCookieDomain(d, originHost string) (string, error) {
	if d == "" {
		return "", nil
	}
	d = strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(d)), "."), ".")
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("cookie domain %q: %s", d, why)
	}
	if d == "" || strings.ContainsAny(d, ":/ ") {
		return bad("want a domain name such as example.com, no scheme, port or path")
	}
	if net.ParseIP(d) != nil {
		return bad("an address cannot be a cookie domain; leave it empty for a host-only cookie")
	}
	if ps, _ := publicsuffix.PublicSuffix(d); ps == d {
		return bad("a public suffix would share the session with every site under it")
	}
	h := strings.ToLower(originHost)
	if h != d && !strings.HasSuffix(h, "."+d) {
		return bad(fmt.Sprintf("must contain the origin's host %s, or browsers refuse the cookie", h))
	}
	return d, nil
}

// secure reports whether cookies get the Secure attribute: whenever the
// public origin is https. Plain http is only for local development.
func (c Config) secure() bool { return strings.HasPrefix(c.Origin, "https://") }

// randomInstanceID draws the default InstanceID: 8 random bytes, hex.
func randomInstanceID(rnd io.Reader) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("instance id: %w", err)
	}
	return fmt.Sprintf("%x", b), nil
}
