package recoveryflow

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/recovery"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/time/rate"
)

// Defaults of Config.
const (
	DefaultLinkTTL = 15 * time.Minute
	// secretName names the deployment secret the code hashes are keyed
	// with (qrauth.Store.Secret).
	secretName = "recovery_code_key"
)

// Config configures the flow. Zero fields take the defaults.
type Config struct {
	// LinkTTL is how long a helpdesk link code works (-recovery-link-ttl).
	LinkTTL time.Duration
	// TryRate and TryBurst limit recovery requests per client address,
	// right or wrong (default one every 6 s, burst 10).
	TryRate  rate.Limit
	TryBurst int
	// WrongRate and WrongBurst limit wrong codes per client address
	// (default 5, then one every 12 minutes): 80-bit codes need no more to
	// be safe, and a person who mistypes still gets several tries.
	WrongRate  rate.Limit
	WrongBurst int
	// MaxFailures wrong codes sent for one account lock its recovery
	// codes (default recovery.MaxFailures).
	MaxFailures int
}

func (c Config) withDefaults() (Config, error) {
	if c.LinkTTL == 0 {
		c.LinkTTL = DefaultLinkTTL
	}
	if c.LinkTTL < time.Minute || c.LinkTTL > 24*time.Hour {
		return c, fmt.Errorf("link code lifetime %s: want 1m to 24h", c.LinkTTL)
	}
	if c.TryRate == 0 {
		c.TryRate = rate.Every(6 * time.Second)
	}
	if c.TryBurst == 0 {
		c.TryBurst = 10
	}
	if c.WrongRate == 0 {
		c.WrongRate = rate.Every(12 * time.Minute)
	}
	if c.WrongBurst == 0 {
		c.WrongBurst = 5
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = recovery.MaxFailures
	}
	if c.MaxFailures < 1 {
		return c, errors.New("max failures must be at least 1")
	}
	return c, nil
}

// Store is what the flow needs: the core store (users, to name the
// account) and the recovery store.
type Store interface {
	qrauth.Store
	recovery.Store
}

// Flow is the recovery flow; it implements server.Flow.
type Flow struct {
	cfg   Config
	st    Store
	h     server.Host
	key   []byte // HMAC key of the code hashes
	tries *server.Limiter
	wrong *server.Limiter
}

// New returns the flow.
func New(cfg Config, st Store) (*Flow, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	return &Flow{cfg: cfg, st: st}, nil
}

// Name implements server.Flow.
func (f *Flow) Name() string { return "recovery" }

// Gate implements server.Flow: recovery adds no sign-in step.
func (f *Flow) Gate(context.Context, *qrauth.User, *server.SignIn) (server.Step, error) {
	return server.Step{}, nil
}

// Shutdown implements server.Flow: nothing long-running.
func (f *Flow) Shutdown() {}

// Purge implements server.Flow: expired link codes go.
func (f *Flow) Purge(ctx context.Context, now time.Time) {
	if n, err := f.st.DeleteExpiredLinkCodes(ctx, now); err != nil {
		f.h.Logger().Error("purge of expired link codes failed", slog.Any("err", err))
	} else if n > 0 {
		f.h.Logger().Debug("expired link codes purged", slog.Int("count", n))
	}
}

// Mount implements server.Flow.
func (f *Flow) Mount(h server.Host, e *echo.Echo) error {
	f.h = h
	key, err := h.Store().Secret(context.Background(), secretName, func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := h.Rand().Read(b)
		return b, err
	})
	if err != nil {
		return fmt.Errorf("recovery: code key: %w", err)
	}
	f.key = key
	f.tries = h.NewLimiter("recovery_try", f.cfg.TryRate, f.cfg.TryBurst)
	f.wrong = h.NewPeekLimiter("recovery_wrong", f.cfg.WrongRate, f.cfg.WrongBurst)

	e.POST(wire.PathAppRecover, f.handleRecover)
	e.GET(wire.PathRecovery, f.handleStatus)
	e.POST(wire.PathRecoveryCodes, f.handleGenerate)
	e.GET(wire.PathAdminRecoveryUser, f.handleAdminStatus)
	e.POST(wire.PathAdminRecoveryLink, f.handleAdminLink)
	return nil
}

// AdminUser implements server.Flow: how many recovery codes are left and
// whether they are locked.
func (f *Flow) AdminUser(ctx context.Context, u *qrauth.User, methods map[string]any) error {
	st, err := f.st.FindRecoveryStatus(ctx, u.ID)
	if err != nil {
		return err
	}
	// Like the other flows, false when there is nothing to show: the
	// admin list names the methods whose value is not false.
	if st.Remaining == 0 && !st.Locked {
		methods["recovery"] = false
		return nil
	}
	methods["recovery"] = statusView(st)
	return nil
}

func statusView(st *recovery.Status) wire.RecoveryStatus {
	return wire.RecoveryStatus{Remaining: st.Remaining, GeneratedAt: st.GeneratedAt, Failures: st.Failures, Locked: st.Locked}
}

// handleRecover links a new phone with a code: POST wire.PathAppRecover.
func (f *Flow) handleRecover(c echo.Context) error {
	ctx, ip, now := c.Request().Context(), c.RealIP(), f.h.Now()
	if ok, wait := f.tries.Allow(ip, now); !ok {
		return server.RateLimited(c, wait, "rate_limited", "Too many recovery attempts from this address. Wait a moment.")
	}
	// Checked before the code is looked up: once the limit is reached
	// even a right code is refused, or it would not stop a guesser.
	if ok, wait := f.wrong.Peek(ip, now); !ok {
		return server.RateLimited(c, wait, "too_many_wrong_codes",
			"Too many wrong recovery codes from this address. Wait, or ask the helpdesk for a link code.")
	}
	var req wire.RecoverRequest
	if err := server.DecodeJSONBody(c, &req); err != nil {
		return err
	}
	code, err := recovery.Normalize(req.Code)
	if err != nil {
		return err
	}
	if !qrauth.ValidPhoneIDHash(req.PhoneIDHash) {
		return qrauth.Errorf(qrauth.EINVALID, "invalid_phone_id_hash", "phone_id_hash must be 64 lowercase hex characters.")
	}
	name, err := qrauth.NormalizeDeviceName(req.DeviceName)
	if err != nil {
		return err
	}
	// Proof of possession of the new key first, before the code is
	// looked up: a request that does not verify learns nothing.
	pub, err := base64.RawURLEncoding.DecodeString(req.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize || qrauth.CheckPublicKey(pub) != nil {
		return qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_signature", "The new phone's signature is not valid.")
	}
	// The name is signed as typed; the stored name is its normalized form.
	signed := wire.Recover{Origin: f.h.Origin(), Code: code, DeviceID: req.DeviceID, PhoneIDHash: req.PhoneIDHash, DeviceName: req.DeviceName}
	if err := signed.Verify(pub, req.Signature); err != nil {
		f.h.Logger().Warn("recovery refused", slog.String("reason", "bad_signature"), slog.String("app_ip", ip))
		return err
	}
	dev := &qrauth.Device{ID: req.DeviceID, Name: name, PublicKey: pub, PhoneIDHash: req.PhoneIDHash, CreatedAt: now, LastSeenAt: now}
	r, err := f.st.RedeemRecovery(ctx, &recovery.Redemption{Hash: recovery.Hash(f.key, code), Now: now, Device: dev, IP: ip})
	if qrauth.ErrorReason(err) == "bad_recovery_code" {
		f.wrong.Allow(ip, now)
		f.countFailure(ctx, req.PhoneIDHash, ip, now)
		f.h.Logger().Info("recovery refused", slog.String("reason", "bad_recovery_code"), slog.String("app_ip", ip))
		return err
	} else if err != nil {
		f.h.Logger().Info("recovery refused", slog.String("reason", qrauth.ErrorReason(err)), slog.String("app_ip", ip))
		return err
	}
	u, err := f.st.FindUserByID(ctx, r.UserID)
	if err != nil {
		return err
	}
	f.h.Logger().Info("account recovered", slog.String("user", string(r.UserID)), slog.String("kind", r.Kind),
		slog.String("device", string(dev.ID)), slog.Int("sessions_ended", r.SessionsEnded), slog.String("app_ip", ip))
	return c.JSON(http.StatusOK, wire.RecoverResponse{UserID: r.UserID, Account: wire.AccountInfo{Name: u.Name},
		Device: wire.DeviceInfo{ID: dev.ID, Name: dev.Name}, Kind: r.Kind, SessionsEnded: r.SessionsEnded, Remaining: r.Remaining})
}

// countFailure counts a wrong code against the account the phone's number
// names, if any: someone who guesses for a given person's account with
// that person's number is stopped at MaxFailures, whatever their address.
// (Without the number a guess is a guess at every account's codes at
// once, which 80 bits and the per-address limit make hopeless.)
func (f *Flow) countFailure(ctx context.Context, phone, ip string, now time.Time) {
	u, err := f.st.FindUserByPhoneIDHash(ctx, phone)
	if err != nil {
		if qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
			f.h.Logger().Error("recovery: cannot count a wrong code", slog.Any("err", err))
		}
		return
	}
	lock := &qrauth.AuditEvent{Time: now, Type: recovery.AuditLocked, UserID: u.ID, IP: ip,
		Detail: fmt.Sprintf("recovery codes locked after %d wrong codes", f.cfg.MaxFailures)}
	st, err := f.st.RecordRecoveryFailure(ctx, u.ID, now, f.cfg.MaxFailures, lock)
	if err != nil {
		f.h.Logger().Error("recovery: cannot count a wrong code", slog.Any("err", err))
		return
	}
	if st.Locked && st.Failures == f.cfg.MaxFailures {
		f.h.Logger().Warn("recovery codes locked", slog.String("user", string(u.ID)), slog.String("app_ip", ip))
	}
}

// newCode draws a code: as shown (grouped) and its stored hash.
func (f *Flow) newCode() (string, []byte, error) {
	code, err := recovery.NewCode(f.h.Rand())
	if err != nil {
		return "", nil, qrauth.Internal(err)
	}
	n, err := recovery.Normalize(code)
	if err != nil {
		return "", nil, qrauth.Internal(err)
	}
	return code, recovery.Hash(f.key, n), nil
}

// handleStatus answers the account page: GET wire.PathRecovery.
func (f *Flow) handleStatus(c echo.Context) error {
	_, u, err := f.h.Authenticate(c)
	if err != nil {
		return err
	}
	st, err := f.st.FindRecoveryStatus(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, statusView(st))
}

// handleGenerate makes a new set of codes, replacing the old one: POST
// wire.PathRecoveryCodes. The codes are in this answer only.
func (f *Flow) handleGenerate(c echo.Context) error {
	sess, u, err := f.h.Authenticate(c)
	if err != nil {
		return err
	}
	codes := make([]string, recovery.SetSize)
	hashes := make([][]byte, recovery.SetSize)
	for i := range codes {
		var err error
		if codes[i], hashes[i], err = f.newCode(); err != nil {
			return err
		}
	}
	now := f.h.Now()
	ev := &qrauth.AuditEvent{Time: now, Type: recovery.AuditCodesGenerated, UserID: u.ID, SessionID: sess.ID, IP: c.RealIP(),
		Detail: fmt.Sprintf("%d recovery codes; the old set no longer works", recovery.SetSize)}
	st, err := f.st.ReplaceRecoveryCodes(c.Request().Context(), u.ID, hashes, now, ev)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, wire.RecoveryCodes{Codes: codes, Status: statusView(st)})
}

// handleAdminStatus: GET wire.PathAdminRecoveryUser.
func (f *Flow) handleAdminStatus(c echo.Context) error {
	if _, err := f.h.RequireRole(c, qrauth.RoleAdmin, qrauth.RoleHelpdesk); err != nil {
		return err
	}
	st, err := f.st.FindRecoveryStatus(c.Request().Context(), qrauth.UserID(c.Param("id")))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, statusView(st))
}

// handleAdminLink issues a link code: POST wire.PathAdminRecoveryLink.
// The helpdesk has checked who the person is, by its own procedure
// (docs/recovery.md); the audit log names who issued it.
func (f *Flow) handleAdminLink(c echo.Context) error {
	a, err := f.h.RequireRole(c, qrauth.RoleAdmin, qrauth.RoleHelpdesk)
	if err != nil {
		return err
	}
	ctx, now := c.Request().Context(), f.h.Now()
	u, err := f.st.FindUserByID(ctx, qrauth.UserID(c.Param("id")))
	if err != nil {
		return err
	}
	code, hash, err := f.newCode()
	if err != nil {
		return err
	}
	lc := &recovery.LinkCode{Hash: hash, UserID: u.ID, IssuedBy: a.Name(), CreatedAt: now, ExpiresAt: now.Add(f.cfg.LinkTTL)}
	ev := &qrauth.AuditEvent{Time: now, Type: recovery.AuditLinkIssued, UserID: u.ID, IP: c.RealIP(),
		Detail: fmt.Sprintf("link code issued by %s, valid until %s", a.Name(), lc.ExpiresAt.UTC().Format(time.RFC3339))}
	if err := f.st.CreateLinkCode(ctx, lc, ev); err != nil {
		return err
	}
	url := wire.RecoverURL(f.h.Origin(), code)
	qr, err := f.h.RenderQR(url)
	if err != nil {
		return qrauth.Internal(err)
	}
	f.h.Logger().Info("recovery link code issued", slog.String("user", string(u.ID)), slog.String("by", a.Name()))
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, wire.LinkCodeResponse{UserID: u.ID, Code: code, URL: url, QR: qr, ExpiresAt: lc.ExpiresAt})
}
