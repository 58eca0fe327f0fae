package oidcflow

import (
	"context"

	jose "github.com/go-jose/go-jose/v4"
)

// SignForTest signs payload with the key the provider would sign an ID
// token of alg with at this moment (the op library adds its kid header the
// same way), and returns the compact JWS and that key's id.
func (f *Flow) SignForTest(ctx context.Context, alg string, payload []byte) (jws, kid string, err error) {
	k, err := f.keys.signer(ctx, alg)
	if err != nil {
		return "", "", err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.SignatureAlgorithm(), Key: k.Key()},
		(&jose.SignerOptions{}).WithHeader("kid", k.ID()))
	if err != nil {
		return "", "", err
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return "", "", err
	}
	jws, err = obj.CompactSerialize()
	return jws, k.ID(), err
}
