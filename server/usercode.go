package server

import (
	"log/slog"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// codeGuard limits wrong typed codes per client IP and for the whole
// instance. Only wrong codes count, so people typing right codes never use
// up each other's budget; the lock makes "check both limits, look the code
// up, count the miss" one step, so concurrent guesses cannot overshoot.
// In a cluster the counts are shared (Config.Shared) but the lock is this
// instance's: when a limit is reached, each other instance may let at most
// the guesses it is checking at that moment through, one each.
type codeGuard struct {
	mu     sync.Mutex
	perIP  *Limiter
	global *Limiter
}

// globalKey is the global limiter's only bucket.
const globalKey = "*"

// handleAppCode exchanges a typed user code for the URL of the QR code it
// stands for (docs/protocol.md §7.9). The phone then joins with that URL's
// PSK exactly as after a scan: the signed join binds the PSK, not the code.
// No device signature: a phone that is not set up yet signs up this way too.
func (s *Server) handleAppCode(c echo.Context) error {
	var req wire.CodeRequest
	if err := DecodeJSONBody(c, &req); err != nil {
		return err
	}
	code, err := wire.NormalizeUserCode(req.Code)
	if err != nil {
		return err
	}
	ip, now := c.RealIP(), s.cfg.Now()
	g := &s.codes
	g.mu.Lock()
	defer g.mu.Unlock()
	// Checked before the lookup: once a limit is reached even a right code
	// is refused, or the limit would not stop a guesser who keeps going.
	if ok, wait := g.perIP.Peek(ip, now); !ok {
		return RateLimited(c, wait, "rate_limited", "Too many wrong codes from this address. Wait a moment, or scan the QR code instead.")
	}
	if ok, wait := g.global.Peek(globalKey, now); !ok {
		return RateLimited(c, wait, "too_many_guesses", "Too many wrong codes were typed on this server just now. Scan the QR code instead, or try again in a minute.")
	}
	url, err := s.hub.takeCode(c.Request().Context(), code)
	if err != nil && qrauth.ErrorReason(err) != "code_unknown" {
		return err
	}
	if err != nil {
		g.perIP.Allow(ip, now)
		g.global.Allow(globalKey, now)
		if ok, _ := g.global.Peek(globalKey, now); !ok {
			s.log.Warn("typed codes refused for everyone: the global limit of wrong codes is reached", slog.String("app_ip", ip))
		}
		s.log.Info("typed code refused", slog.String("reason", "code_unknown"), slog.String("app_ip", ip))
		return errCodeUnknown
	}
	return c.JSON(http.StatusOK, wire.CodeResponse{URL: url})
}
