package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
)

// The bind cookie's value is 16 random bytes followed by the first 16 bytes
// of HMAC-SHA256(bind key, bindMACLabel || those bytes), base64url: 43
// characters. Only values the server issued are accepted, so a client
// cannot bind its tickets to a value of its choosing (a guessable "abc"),
// and an empty or forged value is the same as none.
const (
	bindRandLen  = 16
	bindTagLen   = 16
	bindMACLabel = "qrauth-v1 bind\n"

	// bindKeyName is the store secret keying the MAC. Kept in the store
	// (created on first use), not in memory only, so a restart does not
	// turn every open page's cookie into "missing".
	bindKeyName = "bind_key"
)

// bindKey returns the MAC key, loaded once from the store.
func (s *Server) bindKey(ctx context.Context) ([]byte, error) {
	s.bindMu.Lock()
	defer s.bindMu.Unlock()
	if s.bindK != nil {
		return s.bindK, nil
	}
	k, err := s.store.Secret(ctx, bindKeyName, func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := io.ReadFull(s.cfg.Rand, b)
		return b, err
	})
	if err != nil {
		return nil, err
	}
	if len(k) < 32 {
		return nil, qrauth.Internal(errors.New("the stored bind key is shorter than 32 bytes"))
	}
	s.bindK = k
	return k, nil
}

func bindTag(key, r []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(bindMACLabel))
	m.Write(r)
	return m.Sum(nil)[:bindTagLen]
}

// newBindValue issues a fresh bind cookie value.
func (s *Server) newBindValue(ctx context.Context) (string, error) {
	key, err := s.bindKey(ctx)
	if err != nil {
		return "", err
	}
	r := make([]byte, bindRandLen, bindRandLen+bindTagLen)
	if _, err := io.ReadFull(s.cfg.Rand, r); err != nil {
		return "", qrauth.Internal(err)
	}
	return base64.RawURLEncoding.EncodeToString(append(r, bindTag(key, r)...)), nil
}

// validBindValue reports whether v is a bind value this server issued;
// the tag is compared in constant time.
func (s *Server) validBindValue(ctx context.Context, v string) (bool, error) {
	if !qrauth.ValidToken(v, 43, 43) {
		return false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) != bindRandLen+bindTagLen {
		return false, nil
	}
	key, err := s.bindKey(ctx)
	if err != nil {
		return false, err
	}
	return hmac.Equal(b[bindRandLen:], bindTag(key, b[:bindRandLen])), nil
}

// bindValue returns the request's bind cookie value if the server issued
// it. Missing, empty, malformed and forged values are all errNoBindCookie,
// checked before anything is consumed.
func (s *Server) bindValue(c echo.Context) (string, error) {
	ck, err := c.Cookie(bindCookie)
	if err != nil || ck.Value == "" {
		return "", errNoBindCookie
	}
	ok, err := s.validBindValue(c.Request().Context(), ck.Value)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errNoBindCookie
	}
	return ck.Value, nil
}
