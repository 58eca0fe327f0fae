package oidcflow

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"time"

	"github.com/qrauth/qrauth/oidc"
)

// ConfigClient is a client declared in qrauthd's config file: what
// `qrauthd admin oidc clients add` takes, and for a confidential client the
// hash of its secret (HashSecret), never the secret itself.
type ConfigClient struct {
	ClientRequest
	SecretHash string
}

// HashSecret returns the form of a client secret that the config file
// holds: the SHA-256 hash the store keeps (oidc.Hash), base64 as in the
// store's records.
func HashSecret(secret string) string { return base64.StdEncoding.EncodeToString(oidc.Hash(secret)) }

// Client validates cc as `clients add` validates its request (the same
// ClientRequest.Client) and returns the client, marked as from the config.
func (cc ConfigClient) Client(now time.Time) (*oidc.Client, error) {
	cl, err := cc.ClientRequest.Client(now)
	if err != nil {
		return nil, err
	}
	cl.Source = oidc.SourceConfig
	switch {
	case cc.Public && cc.SecretHash != "":
		return nil, invalid("The public client %q has no secret: drop its secret-hash, or make it confidential.", cc.ID)
	case cc.Public:
		return cl, nil
	case cc.SecretHash == "":
		return nil, invalid("The confidential client %q needs a secret-hash (from `qrauthd oidc hash-secret`).", cc.ID)
	}
	h, err := base64.StdEncoding.DecodeString(cc.SecretHash)
	if err != nil || len(h) != sha256.Size {
		return nil, invalid("The secret-hash of client %q is not what `qrauthd oidc hash-secret` prints (base64 of 32 bytes).", cc.ID)
	}
	cl.SecretHash = h
	return cl, nil
}

// ConfigClients validates the file's clients: each as Client does, and no
// id twice.
func ConfigClients(list []ConfigClient, now time.Time) ([]*oidc.Client, error) {
	out := make([]*oidc.Client, 0, len(list))
	seen := map[string]bool{}
	for _, cc := range list {
		cl, err := cc.Client(now)
		if err != nil {
			return nil, err
		}
		if seen[cl.ID] {
			return nil, invalid("The client %q is declared twice.", cl.ID)
		}
		seen[cl.ID] = true
		out = append(out, cl)
	}
	return out, nil
}

// syncConfigClients makes the store's config clients those of
// Config.Clients: created, updated, and removed (with their tokens) once
// they left the file.
func (f *Flow) syncConfigClients(ctx context.Context) error {
	list, err := ConfigClients(f.cfg.Clients, f.h.Now())
	if err != nil {
		return err
	}
	if err := f.st.SyncOIDCConfigClients(ctx, list); err != nil {
		return err
	}
	f.h.Logger().Info("oidc clients of the config file applied", slog.Int("clients", len(list)))
	return nil
}
