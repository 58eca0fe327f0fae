package badgeflow

import (
	"bytes"
	"errors"
	_ "image/jpeg" // camera frames
	_ "image/png"  // uploaded screenshots
	"log/slog"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/internal/qrimage"
	"github.com/qrauth/qrauth/server"
)

// Scanning. The badge page sends downscaled camera frames (JPEG, at most
// the server's 16 KiB body limit) about three times a second; the server
// finds the QR code with gozxing. Decoding on the server keeps the page
// free of third-party code and lets one decoder, tested here, read both
// camera frames and uploaded photos. Frames are decoded in memory and
// dropped; they are never stored or logged.

// MaxBadgeImagePixels bounds the images the frame endpoint decodes: far
// above a downscaled frame, far below what could exhaust memory.
const MaxBadgeImagePixels = 2048 * 2048

var (
	errUnreadable  = qrauth.Errorf(qrauth.EINVALID, "unreadable_image", "The image is not a JPEG or PNG picture that can be read.")
	errImageTooBig = qrauth.Errorf(qrauth.EINVALID, "unreadable_image", "The image is too large; send at most 2048×2048 pixels.")
)

// DecodeBadgeImage returns the text of the QR code in a JPEG or PNG image.
// It returns EINVALID "unreadable_image" for anything that is not such an
// image of at most MaxBadgeImagePixels pixels, and EINVALID "no_qr_code"
// when no QR code can be read in it.
func DecodeBadgeImage(data []byte) (string, error) {
	img, err := qrimage.Read(data, MaxBadgeImagePixels)
	var tooBig *qrimage.TooLargeError
	if errors.As(err, &tooBig) {
		return "", errImageTooBig
	} else if err != nil {
		return "", errUnreadable
	}
	return qrimage.Decode(img)
}

// limitScan takes a token of the client's frame-and-scan allowance.
func (b *Flow) limitScan(c echo.Context) error {
	now := b.h.Now()
	if ok, wait := b.frames.Allow(c.RealIP(), now); !ok {
		return server.RateLimited(c, wait, "too_many_scans", "Too many scans, wait a moment.")
	}
	return nil
}

// handleScan signs in with a payload the browser read itself:
// {"payload": "QRB1…"}.
func (b *Flow) handleScan(c echo.Context) error {
	var body struct {
		Payload string `json:"payload"`
	}
	if err := server.DecodeJSONBody(c, &body); err != nil {
		return err
	}
	if err := b.limitScan(c); err != nil {
		return err
	}
	return b.signInWithBadge(c, body.Payload)
}

// handleFrame reads a QR code in a camera frame or photo (the body, as
// image/jpeg or image/png) and, when it finds one, signs in with it as
// handleScan does. No code in the frame is {"found": false}, a normal
// answer: most frames of a camera show no badge yet.
func (b *Flow) handleFrame(c echo.Context) error {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if mt != "image/jpeg" && mt != "image/png" {
		return qrauth.Errorf(qrauth.EINVALID, "unsupported_image", "Send the picture as image/jpeg or image/png.")
	}
	if err := b.limitScan(c); err != nil {
		return err
	}
	body, err := server.ReadBody(c)
	if err != nil {
		return err
	}
	if err := acquire(c, b.decodes); err != nil {
		return err
	}
	text, err := DecodeBadgeImage(body)
	<-b.decodes
	if errors.Is(err, qrauth.ErrNoQRCode) {
		return c.JSON(http.StatusOK, map[string]any{"found": false})
	} else if err != nil {
		return err
	}
	return b.signInWithBadge(c, text)
}

// signInWithBadge checks a scanned payload and takes the step the policy
// gives it: the start of a sign-in (first-step) or the badge step of the
// browser's parked sign-in (method).
func (b *Flow) signInWithBadge(c echo.Context, text string) error {
	p, err := badge.ParsePayload(text)
	if err != nil {
		return err
	}
	if p.Kind == badge.Insecure && !b.cfg.InsecureScans {
		// Refused before anything is looked up: with the switch off an
		// insecure badge means nothing, valid or not.
		return errInsecureBadgesOff
	}
	rec, err := b.verifyBadge(c, p)
	if err != nil {
		return err
	}
	method := MethodBadgeSecure
	if rec.Kind == badge.Insecure {
		method = MethodBadgeInsecure
	}
	// The sign-in's audit event names the methods, not the badge; the log
	// says which badge it was. A badge id is no secret: printing a badge
	// takes the master key.
	b.h.Logger().Info("badge accepted", slog.String("badge", string(rec.ID)), slog.String("kind", string(rec.Kind)),
		slog.String("user", string(rec.UserID)), slog.String("ip", c.RealIP()), slog.String("policy", b.cfg.Policy))
	if b.cfg.Policy == BadgeMethod {
		si, err := b.pendingStep(c)
		if errors.Is(err, server.ErrNoPendingSignIn) {
			return errBadgeNeedsFirstStep
		} else if err != nil {
			return err
		}
		switch {
		case rec.Kind != badge.Secure:
			return errBadgeInsecureNotMethod
		case rec.UserID != si.UserID:
			return errBadgeWrongUser
		}
		return b.h.ContinueSignIn(c, si.Pass(method))
	}
	// First step: a new sign-in, whatever this browser had parked before.
	si := &server.SignIn{UserID: rec.UserID, IP: c.RealIP(), UserAgent: c.Request().UserAgent()}
	if method == MethodBadgeInsecure {
		// A username substitute: it names the person, proves nothing.
		return b.h.ContinueSignIn(c, si.PassIdentifying(method))
	}
	return b.h.ContinueSignIn(c, si.Pass(method))
}

// verifyBadge checks a payload against the deployment's keys, the badge's
// record and, for a secure badge, the holder's current password.
func (b *Flow) verifyBadge(c echo.Context, p *badge.Payload) (*badge.Badge, error) {
	ctx := c.Request().Context()
	if p.Kind == badge.Insecure && !b.keys.checkInsecure(p) {
		return nil, badge.ErrInvalid
	}
	rec, err := b.st.FindBadgeByID(ctx, p.ID)
	if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
		return nil, badge.ErrInvalid
	} else if err != nil {
		return nil, err
	} else if rec.Kind != p.Kind {
		return nil, badge.ErrInvalid
	}
	if p.Kind == badge.Secure {
		pw, err := b.st.FindPassword(ctx, rec.UserID)
		if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
			return nil, errBadgePasswordChanged
		} else if err != nil {
			return nil, err
		}
		// The fingerprint only chooses the message; the seal decides.
		if !bytes.Equal(badge.CredentialFingerprint(pw.Stamp), rec.Credential) {
			return nil, errBadgePasswordChanged
		}
		if !b.keys.openSecure(p, rec.UserID, pw.Stamp) {
			return nil, badge.ErrInvalid
		}
	}
	if rec.Revoked() {
		return nil, errBadgeRevoked
	} else if rec.Expired(b.h.Now()) {
		return nil, errBadgeExpired(rec.ExpiresAt)
	}
	return rec, nil
}

// handlePhone is phone approval as the second factor after an insecure
// badge. The badge page opens an ordinary login room; the holder scans it
// with their own phone and approves; the page posts the room's ticket
// here instead of to /api/session. The sign-in continues only if the
// approving phone belongs to the badge's holder.
func (b *Flow) handlePhone(c echo.Context) error {
	body, err := server.ReadBody(c)
	if err != nil {
		return err
	}
	req, err := server.DecodeTicketRequest(body)
	if err != nil {
		return err
	}
	bind, err := b.h.BindValue(c)
	if err != nil {
		return err
	}
	si, err := b.pendingStep(c)
	if err != nil {
		return err
	}
	if !si.Passed(MethodBadgeInsecure) || si.Passed(server.MethodQR) {
		return qrauth.Errorf(qrauth.EUNAUTHORIZED, "phone_not_expected", "This sign-in does not wait for a phone.")
	} else if !b.cfg.allows(SecondFactorPhone) {
		return qrauth.Errorf(qrauth.EFORBIDDEN, "second_factor_not_allowed", "This service does not accept a phone approval here.")
	}
	uid, did, err := b.h.RedeemTicket(req.Ticket, bind)
	if err != nil {
		return err
	}
	if uid != si.UserID {
		return qrauth.Errorf(qrauth.EUNAUTHORIZED, "badge_phone_other_user",
			"That phone belongs to another account than the badge. Approve with the badge holder's own phone.")
	}
	si = si.Pass(server.MethodQR)
	si.DeviceID = did
	return b.h.ContinueSignIn(c, si)
}
