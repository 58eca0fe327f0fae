package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/qrimage"
	"github.com/qrauth/qrauth/wire"
)

type roomState int

const (
	stateWaiting roomState = iota // showing a QR code
	stateScanned                  // an app joined and has the challenge
	stateProfile                  // sign-up: key proven, waiting for the form
	stateDone                     // finished; the room is gone from the hub
)

// room is one browser waiting to be signed in (or, in link mode, to add a
// phone). It is one-shot: once finished it is never reused.
type room struct {
	h        *hub
	id       string
	browser  *conn
	bindHash []byte
	bctx     wire.BrowserContext
	site     string           // login: the relying site the browser signs in for, or ""
	linkUser *qrauth.User     // link mode: the signed-in account
	linkSess qrauth.SessionID // and the session that asked
	expires  time.Time

	mu     sync.Mutex
	mode   string
	state  roomState
	psk    [32]byte // hash of the current PSK
	code   [32]byte // hash of the current user code (login rooms; zero once used)
	timer  *time.Timer
	app    peer // the phone's socket here, or its relay on another instance
	appIP  string
	nonce  string
	phone  string
	devID  qrauth.DeviceID
	pub    ed25519.PublicKey // the key the join proved; in login the registered one
	device *qrauth.Device    // login: the registered device; signup: the new one
	user   *qrauth.User      // login: the account

	scanned time.Time // when the app joined, for the scan-to-signed-in metric

	// In a cluster: the values of this room's PSK and user-code entries in
	// the shared index (to drop exactly ours), and the phones on other
	// instances that joined it (relay.go).
	pskVal, codeVal []byte
	remote          *remoteRoom
}

// openRoom creates a room for a connected browser and sends it the first
// QR code.
func (h *hub) openRoom(browser *conn, bindHash []byte, bctx wire.BrowserContext, site string, linkUser *qrauth.User, linkSess qrauth.SessionID) (*room, error) {
	id, err := qrauth.RandomToken(h.cfg.Rand, 16)
	if err != nil {
		return nil, qrauth.Internal(err)
	}
	r := &room{
		h: h, id: id, browser: browser, bindHash: bindHash, bctx: bctx, site: site,
		linkUser: linkUser, linkSess: linkSess, expires: h.cfg.Now().Add(h.cfg.RoomTTL),
	}
	if err := h.register(r); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mode = r.baseMode()
	r.timer = time.AfterFunc(h.cfg.PSKRotation, r.onTimer)
	r.rotateLocked()
	return r, nil
}

func (r *room) onTimer() {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.state == stateDone:
	case !r.h.cfg.Now().Before(r.expires):
		r.expireLocked()
	case r.state == stateWaiting:
		r.rotateLocked()
	default:
		r.timer.Reset(r.expires.Sub(r.h.cfg.Now()))
	}
}

// rotateLocked puts the room (back) into waiting with a fresh PSK and
// sends the browser its QR code.
func (r *room) rotateLocked() {
	now := r.h.cfg.Now()
	left := r.expires.Sub(now)
	if left <= 0 {
		r.expireLocked()
		return
	}
	psk, err := qrauth.RandomToken(r.h.cfg.Rand, 16)
	if err != nil {
		r.failLocked(qrauth.Internal(err))
		return
	}
	url := r.h.cfg.Origin + wire.Path(wire.PathScan, psk)
	png, err := qrimage.DataURL(url)
	if err != nil {
		r.failLocked(qrauth.Internal(err))
		return
	}
	sum := sha256.Sum256([]byte(psk))
	wait := min(r.h.cfg.PSKRotation, left)
	if err := r.h.setPSK(r, sum, wait); err != nil {
		r.failLocked(err)
		return
	}
	r.psk = sum
	// A login room also gets a typed code for the same PSK. A link room
	// gets none: guessing a link room's code would add the guesser's phone
	// to a signed-in account (docs/threat-model.md).
	var shown string
	if r.linkUser == nil {
		code, err := r.newCodeLocked(url)
		if err != nil {
			r.failLocked(qrauth.Internal(err))
			return
		}
		shown = wire.FormatUserCode(code)
	}
	r.state = stateWaiting
	// The next join decides afresh between sign-in and sign-up.
	r.mode = r.baseMode()
	r.app, r.nonce, r.device, r.user, r.devID, r.phone, r.pub = nil, "", nil, nil, "", "", nil
	r.timer.Reset(wait)
	r.browser.sendMsg(&wire.ServerMessage{
		Type: wire.MsgQR, Mode: r.baseMode(), QR: png, URL: url, UserCode: shown,
		ExpiresIn: ceilSeconds(wait), RoomExpiresIn: ceilSeconds(left),
	})
}

// newCodeLocked draws a user code for url and puts it in the hub's index
// in place of the room's old one. Two live rooms never share a code: a
// collision (about 1 in 2^40/rooms) draws again.
func (r *room) newCodeLocked(url string) (string, error) {
	for range 8 {
		code, err := newUserCode(r.h.cfg.Rand)
		if err != nil {
			return "", err
		}
		sum := userCodeHash(code)
		val := url
		if r.h.shared != nil {
			// The URL holds the room's live PSK: sealed under the code,
			// so that reading Redis does not let anyone into the room.
			if val, err = sealCodeURL(r.h.cfg.Rand, code, url); err != nil {
				return "", err
			}
		}
		ok, err := r.h.setCode(r, sum, val)
		if err != nil {
			return "", err
		}
		if ok {
			r.code = sum
			return code, nil
		}
	}
	return "", errors.New("no free user code after 8 draws")
}

// baseMode is the mode the browser asked for; sign-up is decided by the scan.
func (r *room) baseMode() string {
	if r.linkUser != nil {
		return wire.ModeLink
	}
	return wire.ModeLogin
}

func ceilSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// finishLocked ends the room: it leaves the hub, and each side gets its
// goodbye from toBrowser and toApp.
func (r *room) finishLocked(toBrowser func(*conn), toApp func(peer)) {
	if r.state == stateDone {
		return
	}
	r.state = stateDone
	if r.timer != nil {
		r.timer.Stop()
	}
	r.h.unregister(r)
	toBrowser(r.browser)
	if r.app != nil {
		toApp(r.app)
	}
}

func (r *room) expireLocked() {
	err := qrauth.Errorf(qrauth.EEXPIRED, "room_expired", "The code expired before sign-in finished. Get a new code in the browser.")
	r.finishLocked(func(c *conn) {
		c.sendMsg(&wire.ServerMessage{Type: wire.MsgExpired})
		c.closeWith(wire.CloseCode(qrauth.EEXPIRED), "expired")
	}, func(c peer) { c.closeErr(err) })
}

func (r *room) failLocked(err error) {
	r.countLocked(ResultFailed)
	// Only our own failures are errors; a refusal a client can provoke at
	// will (a lost sign-up race, a link whose session ended) is not.
	lvl := slog.LevelInfo
	if qrauth.ErrorCode(err) == qrauth.EINTERNAL {
		lvl = slog.LevelError
	}
	r.h.log.Log(context.Background(), lvl, "room failed", slog.Any("err", err))
	r.finishLocked(func(c *conn) { c.closeErr(err) }, func(c peer) { c.closeErr(err) })
}

// browserGone ends the room when its browser leaves.
func (r *room) browserGone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := qrauth.Errorf(qrauth.ENOTFOUND, "browser_gone", "The browser closed the sign-in page.")
	r.finishLocked(func(*conn) {}, func(c peer) { c.closeErr(err) })
}

// appGone puts a scanned room back to waiting when its app leaves before
// deciding, so the person can scan again. In sign-up the form can still be
// sent from the browser, so the room stays.
func (r *room) appGone(c peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.app != c || r.state != stateScanned {
		return
	}
	r.rotateLocked()
}

// refuseLocked answers a refused join or decision and gives the browser a
// fresh code, since the one scanned (and its nonce) is spent.
func (r *room) refuseLocked(app peer, err error) {
	r.countLocked(ResultRefused)
	app.closeErr(err)
	r.app = nil
	r.rotateLocked()
}

// countLocked counts the end of a sign-in or sign-up by QR code in the
// metrics; a phone being linked is neither. Before the join has decided
// between sign-in and sign-up a login room counts as a sign-in.
func (r *room) countLocked(result string) {
	switch r.mode {
	case wire.ModeLogin:
		r.h.cfg.Metrics.SignIn(MethodQR, result)
	case wire.ModeSignUp:
		r.h.cfg.Metrics.SignUp(MethodQR, result)
	}
}

// join handles an app's join frame on the room whose PSK it presented.
// It reports whether the app is now in the room.
func (r *room) join(ctx context.Context, app peer, appIP string, f *wire.AppFrame, pskSum [32]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != stateWaiting || r.psk != pskSum {
		app.closeErr(errPSKUnknown)
		return false
	}
	// Both only drop entries already taken or about to expire: an error
	// here changes nothing the join depends on.
	r.pskVal = nil // the shared entry: the phone's Take removed it
	_ = r.h.setPSK(r, [32]byte{}, 0)
	r.psk = [32]byte{}
	// The code names the same PSK, now spent.
	_, _ = r.h.setCode(r, [32]byte{}, "")
	r.code = [32]byte{}
	// Proof of possession first, before the store is asked anything: a
	// bad signature gets the same refusal whether or not the device or
	// the phone is registered. The decoder checked that the key is the
	// device id's and not weak.
	pub, _ := base64.RawURLEncoding.DecodeString(f.PublicKey)
	j := wire.Join{Origin: r.h.cfg.Origin, PSK: f.PSK, DeviceID: f.DeviceID, PhoneIDHash: f.PhoneIDHash}
	if err := j.Verify(pub, f.Signature); err != nil {
		r.h.log.Warn("join refused", slog.String("reason", "bad_signature"),
			slog.String("device", string(f.DeviceID)), slog.String("app_ip", appIP))
		r.refuseLocked(app, err)
		return false
	}
	st := r.h.store
	dev, err := st.FindDeviceByID(ctx, f.DeviceID)
	if err != nil && qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
		r.refuseLocked(app, err)
		return false
	}
	// The id is a 128-bit hash of the key, so a registered device with
	// another key is a collision or a damaged record: refused like a bad
	// signature, and the registered key must itself still be acceptable
	// (a weak key stored before keys were checked signs nothing).
	if dev != nil && (!bytes.Equal(dev.PublicKey, pub) || qrauth.CheckPublicKey(dev.PublicKey) != nil) {
		r.h.log.Warn("join refused", slog.String("reason", "registered_key_differs_or_weak"),
			slog.String("device", string(f.DeviceID)), slog.String("app_ip", appIP))
		r.refuseLocked(app, qrauth.Errorf(qrauth.EUNAUTHORIZED, "bad_signature", "The phone's signature is not valid."))
		return false
	}
	owner, err := st.FindUserByPhoneIDHash(ctx, f.PhoneIDHash)
	if err != nil && qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
		r.refuseLocked(app, err)
		return false
	}
	msg := &wire.ServerMessage{Type: wire.MsgChallenge}
	switch {
	case r.linkUser != nil:
		if dev != nil {
			r.refuseLocked(app, qrauth.Errorf(qrauth.ECONFLICT, "device_already_registered",
				"This phone is already registered to an account. A phone can belong to one account only."))
			return false
		}
		if owner != nil && owner.ID != r.linkUser.ID {
			r.refuseLocked(app, qrauth.Errorf(qrauth.ECONFLICT, "phone_taken",
				"This phone number belongs to another account."))
			return false
		}
		r.mode = wire.ModeLink
		msg.Account = &wire.AccountInfo{Name: r.linkUser.Name}
	case dev != nil:
		if subtleEq(dev.PhoneIDHash, f.PhoneIDHash) != 1 {
			r.refuseLocked(app, qrauth.Errorf(qrauth.EUNAUTHORIZED, "phone_mismatch",
				"This device was registered with another phone number."))
			return false
		}
		u, err := st.FindUserByID(ctx, dev.UserID)
		if err != nil {
			r.refuseLocked(app, err)
			return false
		}
		if err := u.CheckEnabled(); err != nil {
			// The room ends with the refusal on both sides, so that the
			// browser says why instead of showing a new code that no
			// phone of this account could use. The phone proved its key
			// and the person chose to scan this browser's code: telling
			// the browser is telling them.
			r.h.log.Info("join refused", slog.String("reason", "account_disabled"),
				slog.String("device", string(f.DeviceID)), slog.String("app_ip", appIP))
			app.closeErr(err)
			r.failLocked(err)
			return false
		}
		known, err := st.KnownAddress(ctx, u.ID, r.bctx.IP)
		if err != nil {
			r.refuseLocked(app, err)
			return false
		}
		r.mode, r.device, r.user = wire.ModeLogin, dev, u
		msg.Account = &wire.AccountInfo{Name: u.Name}
		msg.KnownAddress = &known
	case owner != nil:
		r.refuseLocked(app, qrauth.Errorf(qrauth.ECONFLICT, "device_not_linked",
			"This phone number already has an account, but this phone is not linked to it. "+
				"Sign in on a browser with a phone that is linked, then choose “Link a phone”."))
		return false
	default:
		r.mode = wire.ModeSignUp
	}
	nonce, err := qrauth.RandomToken(r.h.cfg.Rand, 32)
	if err != nil {
		r.refuseLocked(app, qrauth.Internal(err))
		return false
	}
	r.state, r.app, r.appIP, r.nonce = stateScanned, app, appIP, nonce
	r.scanned = r.h.cfg.Now()
	r.devID, r.phone, r.pub = f.DeviceID, f.PhoneIDHash, pub
	r.timer.Reset(r.expires.Sub(r.h.cfg.Now()))

	bctx := r.bctx
	msg.Mode, msg.Room, msg.Nonce, msg.Origin = r.mode, r.id, nonce, r.h.cfg.Origin
	msg.Context = &bctx
	msg.Proximity = proximity(r.bctx.IP, appIP)
	if r.site != "" && r.linkUser == nil {
		msg.Site = &wire.SiteInfo{Name: r.site}
	}
	app.sendMsg(msg)
	r.browser.sendMsg(&wire.ServerMessage{Type: wire.MsgScanned})
	return true
}

// appFrame handles a frame the app sends after its join, from its socket
// here or relayed from another instance.
func (r *room) appFrame(ctx context.Context, app peer, f *wire.AppFrame) {
	switch f.Type {
	case wire.MsgDecision:
		r.decide(ctx, app, f)
	case wire.MsgProfile:
		r.profile(ctx, app, qrauth.Profile{Name: f.Name, Email: f.Email})
	default:
		app.closeErr(qrauth.Errorf(qrauth.EINVALID, "not_expected", "Already joined."))
	}
}

// decide handles the app's signed decision.
func (r *room) decide(ctx context.Context, app peer, f *wire.AppFrame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.app != app || r.state != stateScanned {
		app.closeErr(qrauth.Errorf(qrauth.ECONFLICT, "not_expected", "This room is not waiting for a decision."))
		return
	}
	d := wire.Decision{
		Origin: r.h.cfg.Origin, Room: r.id, Nonce: r.nonce, Mode: r.mode,
		DeviceID: r.devID, PhoneIDHash: r.phone, Decision: f.Decision,
	}
	now := r.h.cfg.Now()
	ev := func(typ string, uid qrauth.UserID) *qrauth.AuditEvent {
		return &qrauth.AuditEvent{Time: now, Type: typ, UserID: uid, DeviceID: r.devID, IP: r.bctx.IP}
	}
	// The key was proven by the join (in login it is the registered one).
	// A key repeated here, as protocol 1 required, must be that key.
	pub := r.pub
	if f.PublicKey != "" {
		if k, _ := base64.RawURLEncoding.DecodeString(f.PublicKey); !bytes.Equal(k, pub) {
			r.refuseLocked(app, qrauth.Errorf(qrauth.EINVALID, "device_id_mismatch",
				"The public key does not match the device id given when joining."))
			return
		}
	}
	// Only a new phone may decline without a signature: declining gives
	// it nothing.
	if r.mode == wire.ModeLogin || f.Decision == wire.DecisionApprove || f.Signature != "" || f.PublicKey != "" {
		if err := d.Verify(pub, f.Signature); err != nil {
			// Logged, not audited: a refusal changes nothing in the store.
			r.h.log.Warn("decision refused", slog.String("reason", "bad_signature"),
				slog.String("mode", r.mode), slog.String("device", string(r.devID)), slog.String("app_ip", r.appIP))
			r.refuseLocked(app, err)
			return
		}
	}

	if f.Decision == wire.DecisionDeny {
		var uid qrauth.UserID
		if r.user != nil {
			uid = r.user.ID
		} else if r.linkUser != nil {
			uid = r.linkUser.ID
		}
		if uid != "" {
			r.h.audit(ev(qrauth.AuditDenied, uid))
		}
		r.countLocked(ResultDenied)
		r.finishLocked(func(c *conn) {
			c.sendMsg(&wire.ServerMessage{Type: wire.MsgDenied})
			c.closeWith(closeNormal, "denied")
		}, func(c peer) {
			c.sendMsg(&wire.ServerMessage{Type: wire.MsgDone, Result: wire.ResultDenied})
			c.closeWith(closeNormal, "denied")
		})
		return
	}

	switch r.mode {
	case wire.ModeLogin:
		// Read again: the account may have been disabled or deleted while
		// the phone showed the question, and the phone must not say
		// "signed in" for a sign-in the ticket exchange would refuse.
		u, err := r.h.store.FindUserByID(ctx, r.user.ID)
		if err == nil {
			err = u.CheckEnabled()
		}
		if err != nil {
			r.failLocked(err)
			return
		}
		r.approveLocked(r.user.ID, &wire.DeviceInfo{ID: r.device.ID, Name: r.device.Name}, wire.ResultSignedIn)
	case wire.ModeLink:
		// The account page may have been signed out since it opened the
		// room; a phone is only linked for a session that still exists.
		if _, err := r.h.store.FindSessionByID(ctx, r.linkSess); err != nil {
			if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
				err = qrauth.Errorf(qrauth.EUNAUTHORIZED, "session_ended", "The browser that asked to link this phone has signed out.")
			}
			r.failLocked(err)
			return
		}
		dev := &qrauth.Device{ID: r.devID, UserID: r.linkUser.ID, Name: f.DeviceName, PublicKey: pub,
			PhoneIDHash: r.phone, CreatedAt: now, LastSeenAt: now}
		err := r.h.store.CreateDevice(ctx, dev, ev(qrauth.AuditDeviceLinked, r.linkUser.ID))
		if err != nil {
			r.failLocked(err)
			return
		}
		info := &wire.DeviceInfo{ID: dev.ID, Name: dev.Name}
		r.finishLocked(func(c *conn) {
			c.sendMsg(&wire.ServerMessage{Type: wire.MsgLinked, Device: info})
			c.closeWith(closeNormal, wire.ResultLinked)
		}, func(c peer) {
			c.sendMsg(&wire.ServerMessage{Type: wire.MsgDone, Result: wire.ResultLinked, UserID: r.linkUser.ID, Device: info})
			c.closeWith(closeNormal, wire.ResultLinked)
		})
	case wire.ModeSignUp:
		r.device = &qrauth.Device{ID: r.devID, Name: f.DeviceName, PublicKey: pub,
			PhoneIDHash: r.phone, CreatedAt: now, LastSeenAt: now}
		if f.Profile != nil {
			r.createAccountLocked(ctx, *f.Profile)
			return
		}
		r.state = stateProfile
		r.browser.sendMsg(&wire.ServerMessage{Type: wire.MsgSignUp})
		app.sendMsg(&wire.ServerMessage{Type: wire.MsgNeedsForm})
	}
}

// profile handles the sign-up form, from the browser or from the app.
func (r *room) profile(ctx context.Context, from peer, p qrauth.Profile) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != stateProfile || (from != peer(r.browser) && from != r.app) {
		from.sendMsg(wire.ErrorMessageFor(qrauth.Errorf(qrauth.ECONFLICT, "not_expected", "No sign-up form is open.")))
		return
	}
	r.createAccountLocked(ctx, p)
}

func (r *room) createAccountLocked(ctx context.Context, p qrauth.Profile) {
	now := r.h.cfg.Now()
	uid, err := qrauth.NewUserID(r.h.cfg.Rand)
	if err != nil {
		r.failLocked(qrauth.Internal(err))
		return
	}
	u := &qrauth.User{ID: uid, Name: p.Name, Email: p.Email, PhoneIDHash: r.phone, CreatedAt: now}
	r.device.UserID = uid
	err = r.h.store.CreateUser(ctx, u, r.device,
		&qrauth.AuditEvent{Time: now, Type: qrauth.AuditSignUp, UserID: uid, DeviceID: r.device.ID, IP: r.bctx.IP})
	if err != nil {
		r.failLocked(err)
		return
	}
	r.user = u
	r.h.cfg.Metrics.SignUp(MethodQR, ResultOK)
	r.approveLocked(uid, &wire.DeviceInfo{ID: r.device.ID, Name: r.device.Name}, wire.ResultSignedUp)
}

// approveLocked hands the browser its ticket and tells the app.
func (r *room) approveLocked(uid qrauth.UserID, dev *wire.DeviceInfo, result string) {
	tok, err := r.h.issueTicket(&ticket{
		userID: uid, deviceID: dev.ID, bindHash: r.bindHash, ip: r.bctx.IP, userAgent: r.bctx.UserAgent,
		scanned: r.scanned,
	})
	if err != nil {
		r.failLocked(err)
		return
	}
	r.finishLocked(func(c *conn) {
		c.sendMsg(&wire.ServerMessage{Type: wire.MsgApproved, Ticket: tok})
		c.closeWith(closeNormal, "approved")
	}, func(c peer) {
		c.sendMsg(&wire.ServerMessage{Type: wire.MsgDone, Result: result, UserID: uid, Device: dev})
		c.closeWith(closeNormal, result)
	})
}

// proximity compares the browser's and the phone's addresses. Equal
// addresses, or the same IPv4 /24 or IPv6 /64, count as one network.
func proximity(browserIP, appIP string) *wire.Proximity {
	p := &wire.Proximity{AppIP: appIP}
	b, err1 := netip.ParseAddr(browserIP)
	a, err2 := netip.ParseAddr(appIP)
	if err1 == nil && err2 == nil {
		b, a = b.Unmap(), a.Unmap()
		bits := 24
		if b.Is6() {
			bits = 64
		}
		pb, _ := b.Prefix(bits)
		pa, _ := a.Prefix(bits)
		p.SameNetwork = b == a || (b.Is4() == a.Is4() && pb == pa) || (b.IsLoopback() && a.IsLoopback())
	}
	if !p.SameNetwork {
		p.Warning = "The browser is on a different network than this phone. If you did not open this sign-in page yourself just now, deny."
	}
	return p
}
