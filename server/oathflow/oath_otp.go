package oathflow

import (
	"crypto/subtle"
	"encoding/base32"
	"io"
	"net/url"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oath"
)

// This file turns OATH tokens into codes and URIs with pquerna/otp, and
// adds what that library leaves to its callers: the look-behind/look-ahead
// window around a drifting token, the drift itself (TOTP offset, HOTP
// counter) and replay detection, which is the rule that a code's counter
// must be at least the account's NextCounter (enforced again, atomically,
// by the store).

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

var (
	errOATHWrongCode = qrauth.Errorf(qrauth.EINVALID, "oath_wrong_code",
		"That code is not right. Check that you use the code of this account and try again.")
	errOATHReplayed = qrauth.Errorf(qrauth.ECONFLICT, "oath_replayed",
		"This code was already used. Wait for the next code and enter that one.")
	errOATHUnreadable = qrauth.Errorf(qrauth.EINTERNAL, "oath_secret_unreadable",
		"The stored authenticator secret cannot be decrypted: the master key changed, or the record was moved "+
			"from another account or tampered with. An administrator must delete it; then enrol again.")
	errOATHLocked = qrauth.Errorf(qrauth.EFORBIDDEN, "oath_locked",
		"Too many wrong codes: the authenticator is locked. Ask an administrator to unlock it.")
)

func otpAlgorithm(a oath.Algorithm) otp.Algorithm {
	switch a {
	case oath.SHA256:
		return otp.AlgorithmSHA256
	case oath.SHA512:
		return otp.AlgorithmSHA512
	}
	return otp.AlgorithmSHA1
}

// oathCode returns the code of secret at counter, by RFC 4226 (TOTP is
// HOTP of the time step).
func oathCode(t *oath.Token, secret []byte, counter uint64) (string, error) {
	return hotp.GenerateCodeCustom(b32.EncodeToString(secret), counter, hotp.ValidateOpts{
		Digits: otp.Digits(t.Digits), Algorithm: otpAlgorithm(t.Algorithm),
	})
}

// oathKey describes a token to an authenticator app.
type oathKey struct {
	URI     string // otpauth://…
	Secret  string // Base32, no padding
	Issuer  string
	Account string
}

// oathURI builds the otpauth:// URI of a token (Google's Key URI Format,
// which every common app reads). pquerna/otp writes it; it leaves out the
// counter parameter that the format requires for HOTP, so we add it.
func oathURI(t *oath.Token, secret []byte, issuer, account string) (oathKey, error) {
	var k *otp.Key
	var err error
	switch t.Kind {
	case oath.HOTP:
		k, err = hotp.Generate(hotp.GenerateOpts{Issuer: issuer, AccountName: account, Secret: secret,
			Digits: otp.Digits(t.Digits), Algorithm: otpAlgorithm(t.Algorithm)})
	default:
		k, err = totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Secret: secret,
			Period: uint(t.Period), Digits: otp.Digits(t.Digits), Algorithm: otpAlgorithm(t.Algorithm)})
	}
	if err != nil {
		return oathKey{}, qrauth.Internal(err)
	}
	uri := k.URL()
	if t.Kind == oath.HOTP {
		u, err := url.Parse(uri)
		if err != nil {
			return oathKey{}, qrauth.Internal(err)
		}
		q := u.Query()
		q.Set("counter", "0")
		u.RawQuery = q.Encode()
		uri = u.String()
	}
	return oathKey{URI: uri, Secret: k.Secret(), Issuer: issuer, Account: account}, nil
}

// oathAccountName is the label apps show under the issuer: the e-mail,
// else the name, else the account id.
func oathAccountName(u *qrauth.User) string {
	switch {
	case u.Email != "":
		return u.Email
	case u.Name != "":
		return u.Name
	}
	return string(u.ID)
}

// newOATHToken makes a token with a fresh random secret and returns it
// sealed for user uid, with the plain secret.
func (c *Config) newOATHToken(rand io.Reader, uid qrauth.UserID, kind oath.Kind, source string, now time.Time) (*oath.Token, []byte, error) {
	id, err := qrauth.RandomToken(rand, 9)
	if err != nil {
		return nil, nil, qrauth.Internal(err)
	}
	secret := make([]byte, c.SecretSize)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, nil, qrauth.Internal(err)
	}
	sealed, err := c.sealer.Seal(secret, []byte(uid))
	if err != nil {
		return nil, nil, err
	}
	t := &oath.Token{ID: "t_" + id, Kind: kind, Algorithm: c.Algorithm, Digits: c.Digits,
		Secret: sealed, Source: source, CreatedAt: now}
	if kind == oath.TOTP {
		t.Period = int(c.Period / time.Second)
	}
	return t, secret, nil
}

// openSecret decrypts a token's secret; the user id is the associated
// data, so a sealed secret copied into another user's record fails here.
func (c *Config) openSecret(uid qrauth.UserID, t *oath.Token) ([]byte, error) {
	pt, err := c.sealer.Open(t.Secret, []byte(uid))
	if err != nil {
		return nil, errOATHUnreadable
	}
	return pt, nil
}

// oathMatch is where a code was found.
type oathMatch struct {
	Counter uint64 // HOTP counter or TOTP time step
	Offset  int64  // TOTP: time steps the token is ahead of us
}

// match looks for code among the counters the window allows for token t
// of account a (whose NextCounter and Offset are the replay and drift
// state; a fresh account for a token being confirmed) at now.
//
// TOTP: the window is Behind..Ahead steps around the step the account's
// drift predicts, and also around the current step, so that a token whose
// clock was corrected is not locked out by the drift it used to have.
// Steps further than MaxOffset from now are never accepted. HOTP: the
// window is NextCounter..NextCounter+LookAhead.
//
// Every candidate is computed and compared in constant time. Of several
// matches (about one in a million per extra candidate), the one nearest
// the prediction wins. A code that matches only counters below NextCounter
// is a replay.
func (c *Config) match(t *oath.Token, secret []byte, code string, next uint64, offset int64, now time.Time) (oathMatch, error) {
	type cand struct {
		counter uint64
		offset  int64
		dist    int64
	}
	var cands []cand
	switch t.Kind {
	case oath.HOTP:
		for i := 0; i <= c.LookAhead; i++ {
			cands = append(cands, cand{counter: next + uint64(i), dist: int64(i)})
		}
		// The last few counters, only to tell a replay from a wrong code.
		for i := 1; i <= c.LookAhead && uint64(i) <= next; i++ {
			cands = append(cands, cand{counter: next - uint64(i), dist: int64(i)})
		}
	default:
		period := int64(t.Period)
		if period <= 0 {
			period = 30
		}
		cur := now.Unix() / period
		seen := map[int64]bool{}
		for _, center := range []int64{cur + offset, cur} {
			for s := center - int64(c.Behind); s <= center+int64(c.Ahead); s++ {
				off := s - cur
				if s < 0 || seen[s] || off > int64(c.MaxOffset) || -off > int64(c.MaxOffset) {
					continue
				}
				seen[s] = true
				d := s - (cur + offset)
				if d < 0 {
					d = -d
				}
				cands = append(cands, cand{counter: uint64(s), offset: off, dist: d})
			}
		}
	}

	var best *cand
	replayed := false
	for i := range cands {
		want, err := oathCode(t, secret, cands[i].counter)
		if err != nil {
			return oathMatch{}, qrauth.Internal(err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		if cands[i].counter < next {
			replayed = true
			continue
		}
		if best == nil || cands[i].dist < best.dist {
			best = &cands[i]
		}
	}
	switch {
	case best != nil:
		return oathMatch{Counter: best.counter, Offset: best.offset}, nil
	case replayed:
		return oathMatch{}, errOATHReplayed
	}
	return oathMatch{}, errOATHWrongCode
}
