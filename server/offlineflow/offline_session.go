package offlineflow

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
)

// offlineMethodView is an activated method as the APIs show it.
type offlineMethodView struct {
	DeviceID          qrauth.DeviceID `json:"device_id"`
	DeviceName        string          `json:"device_name,omitempty"`
	Method            offline.Method  `json:"method"`
	Locked            bool            `json:"locked"`
	Failures          int             `json:"failures"`
	RemainingAttempts int             `json:"remaining_attempts"`
	ActivatedAt       time.Time       `json:"activated_at"`
	// Omitted while never used, while not locked (never Go's zero time).
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	LockedAt   time.Time `json:"locked_at,omitzero"`
}

func (o *Flow) viewMethod(c *offline.Credential, name string) offlineMethodView {
	return offlineMethodView{DeviceID: c.DeviceID, DeviceName: name, Method: c.Method, Locked: c.Locked,
		Failures: c.Failures, RemainingAttempts: o.remaining(c), ActivatedAt: c.ActivatedAt,
		LastUsedAt: c.LastUsedAt, LockedAt: c.LockedAt}
}

func (o *Flow) remaining(c *offline.Credential) int {
	if c == nil || c.Locked {
		return 0
	}
	return max(0, o.cfg.MaxAttempts-c.Failures)
}

// offlineSessionView is a code session as the relying site sees it.
type offlineSessionView struct {
	ID                string          `json:"id"`
	Status            offline.State   `json:"status"`
	UserID            qrauth.UserID   `json:"user_id"`
	DeviceID          qrauth.DeviceID `json:"device_id"`
	Method            offline.Method  `json:"method"`
	Context           string          `json:"context"`
	VerificationData  string          `json:"verification_data"`
	OTPLength         int             `json:"otp_length"`
	RemainingAttempts int             `json:"remaining_attempts"`
	CreatedAt         time.Time       `json:"created_at"`
	ExpiresAt         time.Time       `json:"expires_at"`
	EndedAt           *time.Time      `json:"ended_at,omitempty"`
	QR                string          `json:"qr,omitempty"`
	PageURL           string          `json:"page_url,omitempty"`
	// Result is set by verify: "success" or "failure".
	Result string `json:"result,omitempty"`
}

// viewSession shows s; cred is the current credential of its method, nil
// when the method is no longer active.
func (o *Flow) viewSession(s *offline.Session, cred *offline.Credential) offlineSessionView {
	v := offlineSessionView{ID: s.ID, Status: s.Status(o.h.Now()), UserID: s.UserID, DeviceID: s.DeviceID,
		Method: s.Method, VerificationData: s.VerificationData, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt}
	if vd, err := offline.DecodeVerificationData(s.VerificationData); err == nil {
		v.Context, v.OTPLength = vd.Context, vd.Digits
	}
	if !s.EndedAt.IsZero() {
		t := s.EndedAt
		v.EndedAt = &t
	}
	// A pending session whose outcome is already decided says so: its
	// method was locked, or turned off or set up again (nil cred, another
	// key), since it began. The store writes it down at the next attempt.
	if v.Status == offline.Pending {
		switch {
		case cred == nil || cred.KeyID != s.KeyID || cred.UserID != s.UserID:
			v.Status = offline.Failed
		case cred.Locked:
			v.Status = offline.Locked
		default:
			v.RemainingAttempts = o.remaining(cred)
		}
	}
	return v
}

// credential returns the current credential of a session's method, nil if
// it is gone.
func (o *Flow) credential(ctx context.Context, s *offline.Session) (*offline.Credential, error) {
	c, err := o.st.FindOfflineCredential(ctx, s.DeviceID, s.Method)
	if qrauth.ErrorCode(err) == qrauth.ENOTFOUND {
		return nil, nil
	}
	return c, err
}

// beginRequest says what to begin a code session for.
type beginRequest struct {
	User    *qrauth.User
	Device  qrauth.DeviceID // "" for the user's only device with the method
	Method  offline.Method
	Context string
	Purpose string
	// BindHash (sign-in) or ViewTokenHash (API) tie the session to who may
	// verify it besides the relying site.
	BindHash, ViewTokenHash []byte
	IP                      string
}

func errMethodLocked(m offline.Method) error {
	return qrauth.Errorf(qrauth.ECONFLICT, "method_locked",
		"%s of this phone is locked after too many wrong codes. Sign in with the QR code instead (it still works), "+
			"or ask an administrator to unlock it.", m)
}

// begin creates a code session: it picks the credential, draws a
// challenge and stores the session with its verification data.
func (o *Flow) begin(ctx context.Context, r beginRequest) (*offline.Session, error) {
	if err := offline.CheckContext(r.Context); err != nil {
		return nil, err
	}
	// A relying site asks codes of a disabled account in vain (the
	// sign-in page filtered it out already).
	if err := r.User.CheckEnabled(); err != nil {
		return nil, err
	}
	creds, err := o.st.FindOfflineCredentialsByUser(ctx, r.User.ID)
	if err != nil {
		return nil, err
	}
	var match []*offline.Credential
	for _, c := range creds {
		if c.Method == r.Method && (r.Device == "" || c.DeviceID == r.Device) {
			match = append(match, c)
		}
	}
	switch {
	case len(match) == 0 && r.Device != "":
		return nil, qrauth.Errorf(qrauth.ENOTFOUND, "offline_method_not_found", "That device has not activated %s.", r.Method)
	case len(match) == 0:
		return nil, qrauth.Errorf(qrauth.ENOTFOUND, "offline_method_not_found", "This user has no phone with %s activated.", r.Method)
	case len(match) > 1:
		ids := make([]string, len(match))
		for i, c := range match {
			ids[i] = string(c.DeviceID)
		}
		return nil, qrauth.Errorf(qrauth.ECONFLICT, "device_required",
			"This user has several phones with %s; choose one with device_id: %s.", r.Method, strings.Join(ids, ", "))
	}
	cred := match[0]
	if cred.Locked {
		return nil, errMethodLocked(cred.Method)
	}
	vd, err := offline.NewVerificationData(o.h.Rand(), cred.Method, o.cfg.OTPLength, cred.DeviceID, r.Context)
	if err != nil {
		return nil, err
	}
	text, err := vd.Encode()
	if err != nil {
		return nil, err
	}
	id, err := qrauth.RandomToken(o.h.Rand(), 16)
	if err != nil {
		return nil, qrauth.Internal(err)
	}
	now := o.h.Now()
	sess := &offline.Session{ID: "o_" + id, Purpose: r.Purpose, UserID: r.User.ID, DeviceID: cred.DeviceID,
		Method: cred.Method, KeyID: cred.KeyID, VerificationData: text, BindHash: r.BindHash, ViewTokenHash: r.ViewTokenHash,
		State: offline.Pending, IP: r.IP, CreatedAt: now, ExpiresAt: now.Add(o.cfg.SessionTTL)}
	if err := o.st.CreateOfflineSession(ctx, sess); err != nil {
		return nil, err
	}
	o.purge(ctx)
	return sess, nil
}

// verify checks one code against a session and records the outcome. A
// malformed code (wrong length, not digits) is refused without counting:
// it is a typing slip, not a guess. A well-formed wrong code counts
// against the method, also across sessions. The comparison is constant
// time. It returns the session and the method after the attempt.
func (o *Flow) verify(ctx context.Context, sess *offline.Session, otp, ip, actor string) (*offline.Session, *offline.Credential, error) {
	now := o.h.Now()
	vd, err := offline.DecodeVerificationData(sess.VerificationData)
	if err != nil {
		return nil, nil, qrauth.Internal(fmt.Errorf("stored verification data of %s: %w", sess.ID, err))
	}
	otp = strings.TrimSpace(otp)
	if !offline.ValidOTP(otp, vd.Digits) {
		return nil, nil, qrauth.Errorf(qrauth.EINVALID, "malformed_otp", "The code has %d digits.", vd.Digits)
	}
	// A session begun before the account was disabled verifies nothing
	// after: a relying site takes a verified code as a sign-in.
	if u, err := o.h.Store().FindUserByID(ctx, sess.UserID); err != nil {
		return nil, nil, err
	} else if err := u.CheckEnabled(); err != nil {
		return nil, nil, err
	}
	cred, err := o.credential(ctx, sess)
	if err != nil {
		return nil, nil, err
	}
	a := offline.Attempt{SessionID: sess.ID, At: now, MaxFailures: o.cfg.MaxAttempts}
	if cred != nil {
		a.KeyID = cred.KeyID
		key, err := o.sealer.Open(cred.SealedKey, keyAD(cred.UserID, cred.DeviceID, cred.Method))
		if err != nil {
			return nil, nil, qrauth.Internal(fmt.Errorf("offline key of %s/%s: %w", cred.DeviceID, cred.Method, err))
		}
		want := offline.OTP(key, sess.VerificationData, vd.Digits)
		clear(key)
		a.OK = subtle.ConstantTimeCompare([]byte(want), []byte(otp)) == 1
	}
	a.OnLock = &qrauth.AuditEvent{Time: now, Type: offline.AuditLocked, UserID: sess.UserID, DeviceID: sess.DeviceID,
		IP: ip, Detail: fmt.Sprintf("%s locked after %d wrong codes", sess.Method, o.cfg.MaxAttempts)}
	if sess.Purpose == offline.ForAPI {
		// A sign-in is audited as such when its session is issued.
		a.OnSuccess = &qrauth.AuditEvent{Time: now, Type: offline.AuditVerified, UserID: sess.UserID,
			DeviceID: sess.DeviceID, IP: ip, Detail: fmt.Sprintf("%s code for %s verified by %s", sess.Method, sess.ID, actor)}
	}
	after, cred, err := o.st.SettleOfflineAttempt(ctx, a)
	if err != nil {
		return nil, nil, err
	}
	if after.State == offline.Locked && a.OnLock.Seq != 0 {
		o.h.Logger().Warn("offline method locked", slog.String("user", string(after.UserID)),
			slog.String("device", string(after.DeviceID)), slog.String("method", string(after.Method)))
	}
	return after, cred, nil
}

// attemptError turns a verified-but-not-successful session into the error
// a browser page shows.
func (o *Flow) attemptError(sess *offline.Session, cred *offline.Credential) error {
	switch sess.State {
	case offline.Pending:
		n := o.remaining(cred)
		words := fmt.Sprintf("%d attempts left", n)
		if n == 1 {
			words = "1 attempt left"
		}
		return qrauth.Errorf(qrauth.EUNAUTHORIZED, "wrong_code",
			"That code is not right: check the digits and that the phone showed this page's code (%s before offline codes lock on this phone).", words)
	case offline.Locked:
		return errMethodLocked(sess.Method)
	case offline.Failed:
		return qrauth.Errorf(qrauth.ECONFLICT, "method_changed",
			"The phone's offline codes were turned off or set up again since this code was shown. Start again.")
	}
	return qrauth.Errorf(qrauth.ECONFLICT, "session_"+string(sess.State), "This code session has ended (%s). Start again.", sess.State)
}
