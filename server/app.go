package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// nonceCache remembers the nonces of signed app requests long enough that
// a request cannot be replayed inside its validity window.
type nonceCache struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// maxNonces bounds the cache; past it, signed requests are refused rather
// than memory growing without limit.
const maxNonces = 1 << 20

func newNonceCache() *nonceCache { return &nonceCache{m: make(map[string]time.Time)} }

// add records nonce until until; false if it was seen or the cache is full.
func (n *nonceCache) add(nonce string, until time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.m[nonce]; ok || len(n.m) >= maxNonces {
		return false
	}
	n.m[nonce] = until
	return true
}

func (n *nonceCache) purge(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, t := range n.m {
		if now.After(t) {
			delete(n.m, k)
		}
	}
}

// nonceTTL is how long a nonce is remembered: past it, the request's time
// is too far from the clock to be accepted anyway.
const nonceTTL = 3 * wire.AppRequestMaxSkew * time.Second

// firstUse records the nonce key (device id "/" nonce) and reports whether
// this is its first use: in this process's cache, or in a cluster in the
// shared store, so that a request replayed to another instance is refused
// too. The shared key is a hash: the store holds no client bytes verbatim.
func (s *Server) firstUse(ctx context.Context, key string, now time.Time) (bool, error) {
	if s.cfg.Shared == nil {
		return s.seen.add(key, now.Add(nonceTTL)), nil
	}
	h := sha256.Sum256([]byte(key))
	first, err := s.cfg.Shared.Once(ctx, "nonce:"+hex.EncodeToString(h[:]), nonceTTL)
	if err != nil {
		return false, qrauth.Internal(fmt.Errorf("app request nonce: %w", err))
	}
	return first, nil
}

// authenticateDevice checks a device-signed request (see wire.AppRequest).
func (s *Server) authenticateDevice(c echo.Context) (*qrauth.Device, error) {
	now := s.cfg.Now()
	if ok, wait := s.apps.Allow(c.RealIP(), now); !ok {
		return nil, RateLimited(c, wait, "rate_limited", "Too many requests from this address. Wait a moment and try again.")
	}
	h := c.Request().Header
	unauth := func(reason, msg string) error { return qrauth.Errorf(qrauth.EUNAUTHORIZED, reason, "%s", msg) }
	id := qrauth.DeviceID(h.Get(wire.HeaderDevice))
	if !qrauth.ValidDeviceID(id) {
		return nil, unauth("device_signature_required", "This call must be signed by a registered device.")
	}
	ts, err := strconv.ParseInt(h.Get(wire.HeaderTime), 10, 64)
	if err != nil {
		return nil, unauth("bad_time", "The request time is missing or malformed.")
	}
	if d := now.Unix() - ts; d > wire.AppRequestMaxSkew || d < -wire.AppRequestMaxSkew {
		return nil, unauth("clock_skew", "The request time is too far from the server's clock. Check the phone's clock.")
	}
	dev, err := s.store.FindDeviceByID(c.Request().Context(), id)
	if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
		return nil, unauth("device_unknown", "This device is not registered.")
	} else if err != nil {
		return nil, err
	}
	r := wire.AppRequest{Method: c.Request().Method, Path: c.Request().URL.Path, Time: ts,
		Nonce: h.Get(wire.HeaderNonce), DeviceID: id}
	if err := r.Verify(dev.PublicKey, h.Get(wire.HeaderSignature)); err != nil {
		return nil, err
	}
	// Checked after the signature so that nobody can burn a device's nonces.
	if first, err := s.firstUse(c.Request().Context(), string(id)+"/"+r.Nonce, now); err != nil {
		return nil, err
	} else if !first {
		return nil, unauth("replayed", "This request was already used.")
	}
	// A disabled account's phone approves nothing (offline transactions
	// and codes) and sees nothing of it.
	u, err := s.store.FindUserByID(c.Request().Context(), dev.UserID)
	if err != nil {
		return nil, err
	} else if err := u.CheckEnabled(); err != nil {
		return nil, err
	}
	return dev, nil
}

func (s *Server) handleAppListSessions(c echo.Context) error {
	dev, err := s.authenticateDevice(c)
	if err != nil {
		return err
	}
	list, err := s.listSessions(c.Request().Context(), dev.UserID, "")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.SessionList{Sessions: list})
}

func (s *Server) handleAppDeleteSession(c echo.Context) error {
	dev, err := s.authenticateDevice(c)
	if err != nil {
		return err
	}
	if err := s.revokeSession(c.Request().Context(), dev.UserID, qrauth.SessionID(c.Param("id")), &qrauth.AuditEvent{
		IP: c.RealIP(), DeviceID: dev.ID, Detail: "from device " + dev.Name,
	}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// phoneSaltName is the store secret keying PhoneIDHash.
const phoneSaltName = "phone_salt"

func (s *Server) handleDiscovery(c echo.Context) error {
	salt, err := s.store.Secret(c.Request().Context(), phoneSaltName, func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := s.cfg.Rand.Read(b)
		return b, err
	})
	if err != nil {
		return err
	}
	ws := "ws" + s.cfg.Origin[len("http"):]
	return c.JSON(http.StatusOK, wire.Discovery{
		ProtocolVersion: wire.ProtocolVersion,
		Origin:          s.cfg.Origin,
		PhoneSalt:       base64.RawURLEncoding.EncodeToString(salt),
		QRPrefix:        s.cfg.Origin + wire.Prefix(wire.PathScan),
		AppSocket:       ws + wire.PathAppSocket,
		SessionsURL:     s.cfg.Origin + wire.PathAppSessions,
	})
}
