package oidcflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/pgtest"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/server/oidcflow"
	"github.com/qrauth/qrauth/shared"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/store/postgres"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// providerStore is what an instance runs on: the core store and the
// provider's.
type providerStore interface {
	qrauth.Store
	oidc.Store
}

// instance is one qrauthd of a test cluster, with its provider.
type instance struct {
	srv  *server.Server
	flow *oidcflow.Flow
	st   oidc.Store
}

// backends gives each test a bbolt file shared by both instances (as the
// server package's cluster tests do) and two pools on one PostgreSQL
// schema (as two qrauthd processes would have).
var backends = []struct {
	name string
	open func(t *testing.T) [2]providerStore
}{
	{"bbolt", func(t *testing.T) [2]providerStore {
		db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return [2]providerStore{db, db}
	}},
	{"postgres", func(t *testing.T) [2]providerStore {
		url := pgtest.Shared(t).Schema(t)
		var out [2]providerStore
		for i := range out {
			db, err := postgres.Open(context.Background(), url, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			out[i] = db
		}
		return out
	}},
}

// openCluster starts two instances at the same moment on sts and one
// shared store, as two qrauthd processes of a cluster starting together
// on an empty database.
func openCluster(t *testing.T, sts [2]providerStore, cfg oidcflow.Config) [2]*instance {
	t.Helper()
	sh := shared.NewMemory(nil)
	var out [2]*instance
	var errs [2]error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, id := range []string{"a", "b"} {
		f := oidcflow.New(cfg, sts[i])
		s, err := server.New(server.Config{Addr: "127.0.0.1:0", Shared: sh, InstanceID: id,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, sts[i], f)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = &instance{srv: s, flow: f, st: sts[i]}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.Open()
		}()
	}
	close(start)
	wg.Wait()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i, in := range out {
			if errs[i] == nil {
				in.srv.Shutdown(ctx)
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	return out
}

// jwks fetches the instance's published key set over HTTP.
func (in *instance) jwks(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	res, err := http.Get(in.srv.Origin() + "/oidc/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /oidc/keys: %s", res.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	slices.Sort(out)
	return out
}

// storedKids are the ids of the keys in the store.
func storedKids(t *testing.T, st oidc.Store) []string {
	t.Helper()
	keys, err := st.ListOIDCKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		out = append(out, k.ID)
	}
	slices.Sort(out)
	return out
}

// verifies checks that jws verifies against the key set, by its kid.
func verifies(t *testing.T, jws string, set jose.JSONWebKeySet) error {
	t.Helper()
	obj, err := jose.ParseSigned(jws, []jose.SignatureAlgorithm{jose.RS256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	kid := obj.Signatures[0].Header.KeyID
	ks := set.Key(kid)
	if len(ks) != 1 {
		return fmt.Errorf("kid %s is not in the key set %v", kid, kids(set))
	}
	_, err = obj.Verify(ks[0].Key)
	return err
}

func sign(t *testing.T, in *instance, alg string) (jws, kid string) {
	t.Helper()
	jws, kid, err := in.flow.SignForTest(t.Context(), alg, []byte(`{"sub":"u_ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	return jws, kid
}

// poll calls ok until it reports true or the deadline passes.
func poll(t *testing.T, deadline time.Time, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not by the deadline", what)
		}
		time.Sleep(20 * time.Millisecond) // the polling step, not a wait for the event
	}
}

// TestClusterOIDCKeysCreatedOnce: two instances starting together on an
// empty store end with one key set, stored and published by both, and a
// token either signs verifies against the other's key set.
func TestClusterOIDCKeysCreatedOnce(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			in := openCluster(t, b.open(t), oidcflow.Config{})
			ka, kb := kids(in[0].jwks(t)), kids(in[1].jwks(t))
			if len(ka) != 2 || !slices.Equal(ka, kb) {
				t.Fatalf("the instances publish different key sets: A %v, B %v", ka, kb)
			}
			if st := storedKids(t, in[0].st); !slices.Equal(st, ka) {
				t.Fatalf("published %v, stored %v", ka, st)
			}
			for _, alg := range []string{oidc.AlgRS256, oidc.AlgEdDSA} {
				for i, other := range []int{1, 0} {
					jws, _ := sign(t, in[i], alg)
					if err := verifies(t, jws, in[other].jwks(t)); err != nil {
						t.Errorf("%s token of instance %d against the other's key set: %v", alg, i, err)
					}
				}
			}
		})
	}
}

// TestClusterOIDCKeyRotation: a rotation through A is published by B
// within KeyReload, before the new key signs anywhere; the old key signs
// until then, and every token verifies against either instance's key set.
func TestClusterOIDCKeyRotation(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			const reload = time.Second
			in := openCluster(t, b.open(t), oidcflow.Config{KeyReload: reload})
			a, bb := in[0], in[1]
			before := kids(a.jwks(t))
			oldJWS, oldKid := sign(t, bb, oidc.AlgRS256)

			rotated := time.Now()
			signFrom, err := a.flow.RotateKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if d := signFrom.Sub(rotated); d < 2*reload-100*time.Millisecond || d > 2*reload+time.Second {
				t.Fatalf("the new keys sign %v after the rotation, want 2×KeyReload", d)
			}
			after := kids(a.jwks(t))
			if len(after) != 4 {
				t.Fatalf("A publishes %v after the rotation, want the 2 old and 2 new keys", after)
			}
			// Not yet: A's own new key waits for B to publish it.
			if _, kid := sign(t, a, oidc.AlgRS256); kid != oldKid && time.Now().Before(signFrom) {
				t.Fatalf("A signs with %s before the new key's time, want the old %s", kid, oldKid)
			}

			poll(t, rotated.Add(reload+time.Second), "B publishes the new keys", func() bool {
				return slices.Equal(kids(bb.jwks(t)), after)
			})
			if now := time.Now(); !now.Before(signFrom) {
				t.Fatalf("B published the new keys only at %v, after they sign (%v)", now, signFrom)
			}

			// From signFrom both sign with the new key, and everything
			// verifies everywhere, the old token included.
			for i, x := range in {
				poll(t, signFrom.Add(reload+time.Second), fmt.Sprintf("instance %d signs with the new key", i), func() bool {
					_, kid := sign(t, x, oidc.AlgRS256)
					return kid != oldKid && !slices.Contains(before, kid)
				})
			}
			for _, alg := range []string{oidc.AlgRS256, oidc.AlgEdDSA} {
				ja, ka := sign(t, a, alg)
				jb, kb := sign(t, bb, alg)
				if ka != kb {
					t.Fatalf("%s: A signs with %s, B with %s", alg, ka, kb)
				}
				for _, set := range []jose.JSONWebKeySet{a.jwks(t), bb.jwks(t)} {
					for _, jws := range []string{ja, jb, oldJWS} {
						if err := verifies(t, jws, set); err != nil {
							t.Errorf("%s: %v", alg, err)
						}
					}
				}
			}
			if st := storedKids(t, a.st); !slices.Equal(st, after) {
				t.Fatalf("stored %v, published %v", st, after)
			}
		})
	}
}

// TestOIDCKeyRotationAlone: an instance alone rotates as before clusters
// existed: the new key signs at once, the old one verifies.
func TestOIDCKeyRotationAlone(t *testing.T) {
	db, err := store.Open(t.TempDir()+"/qrauth.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := oidcflow.New(oidcflow.Config{KeyReload: time.Millisecond}, db) // unused alone
	s, err := server.New(server.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, db, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	in := &instance{srv: s, flow: f, st: db}
	oldJWS, oldKid := sign(t, in, oidc.AlgRS256)
	signFrom, err := f.RotateKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if signFrom.After(time.Now()) {
		t.Fatalf("alone, the new keys sign only from %v", signFrom)
	}
	jws, kid := sign(t, in, oidc.AlgRS256)
	if kid == oldKid {
		t.Fatal("alone, the old key still signs after the rotation")
	}
	set := in.jwks(t)
	for _, j := range []string{oldJWS, jws} {
		if err := verifies(t, j, set); err != nil {
			t.Error(err)
		}
	}
	keys, err := db.ListOIDCKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !k.SignFrom.IsZero() {
			t.Errorf("alone, key %s got a SignFrom", k.ID)
		}
	}
}
