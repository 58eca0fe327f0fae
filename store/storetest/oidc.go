package storetest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oidc"
)

// RunOIDC runs the conformance suite of oidc.Store, the OpenID Connect
// provider's records. open must return a new, empty store on every call
// and close it when t ends:
//
//	func TestOIDCStore(t *testing.T) {
//		storetest.RunOIDC(t, func(t *testing.T) oidc.Store { return MustOpenDB(t) })
//	}
func RunOIDC(t *testing.T, open func(t *testing.T) oidc.Store) {
	for _, g := range []struct {
		name string
		fn   func(*testing.T, oidcOpener)
	}{
		{"Clients", testOIDCClients},
		{"ConfigClients", testOIDCConfigClients},
		{"AuthRequests", testOIDCAuthRequests},
		{"SingleUseCode", testOIDCSingleUseCode},
		{"Tokens", testOIDCTokens},
		{"RefreshRotation", testOIDCRefreshRotation},
		{"RevokeGrant", testOIDCRevokeGrant},
		{"Keys", testOIDCKeys},
		{"UpdateKeys", testOIDCUpdateKeys},
		{"ConcurrentKeyCreation", testOIDCConcurrentKeyCreation},
		{"ConsentAndSessions", testOIDCConsentAndSessions},
		{"Purge", testOIDCPurge},
	} {
		t.Run(g.name, func(t *testing.T) { g.fn(t, open) })
	}
}

type oidcOpener = func(t *testing.T) oidc.Store

func newOIDCClient(id, secret string) *oidc.Client {
	c := &oidc.Client{ID: id, Name: "Site " + id, RedirectURIs: []string{"https://" + id + ".example/cb"},
		PostLogoutURIs: []string{"https://" + id + ".example/bye"}, Scopes: []string{"profile", "email"},
		IDTokenAlg: oidc.AlgRS256, CreatedAt: t0}
	if secret == "" {
		c.Public = true
	} else {
		c.SecretHash = oidc.Hash(secret)
	}
	return c
}

func newAuthRequest(id, clientID string) *oidc.AuthRequest {
	return &oidc.AuthRequest{ID: id, ClientID: clientID, RedirectURI: "https://" + clientID + ".example/cb",
		State: "state-" + id, Nonce: "nonce-" + id, Scopes: []string{"openid", "profile"}, ResponseType: "code",
		CodeChallenge: "challenge-" + id, CodeChallengeMethod: "S256",
		CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}
}

// newOIDCToken returns token id of grant; a refresh token's value is
// "value-"+id.
func newOIDCToken(id, kind, grant string) *oidc.Token {
	t := &oidc.Token{ID: id, Kind: kind, GrantID: grant, ClientID: "wiki", UserID: "u_ada",
		Scopes: []string{"openid"}, AMR: []string{"hwk"}, ACR: "urn:qrauth:acr:qr", AuthTime: t0,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if kind == oidc.KindRefresh {
		t.Hash = oidc.Hash("value-" + id)
	}
	return t
}

func wantSame(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// wantTokens checks which of ids are stored (present) and which are not.
func wantTokens(t *testing.T, st oidc.Store, present bool, ids ...string) {
	t.Helper()
	for _, id := range ids {
		_, err := st.FindOIDCToken(t.Context(), id)
		if present {
			noError(t, err)
		} else {
			wantError(t, err, qrauth.ENOTFOUND, "")
		}
	}
}

func testOIDCClients(t *testing.T, open oidcOpener) {
	ctx := t.Context
	t.Run("OK", func(t *testing.T) {
		st := open(t)
		want := newOIDCClient("wiki", "s3cret")
		noError(t, st.CreateOIDCClient(ctx(), newOIDCClient("wiki", "s3cret")))
		noError(t, st.CreateOIDCClient(ctx(), newOIDCClient("app", "")))
		got, err := st.FindOIDCClient(ctx(), "wiki")
		noError(t, err)
		wantSame(t, "client", got, want)
		// The secret is kept as its hash only.
		if !bytes.Equal(got.SecretHash, oidc.Hash("s3cret")) || bytes.Contains(got.SecretHash, []byte("s3cret")) {
			t.Fatalf("secret hash %x", got.SecretHash)
		}
		pub, err := st.FindOIDCClient(ctx(), "app")
		noError(t, err)
		if !pub.Public || len(pub.SecretHash) != 0 {
			t.Fatalf("public client %+v", pub)
		}
		list, err := st.ListOIDCClients(ctx())
		noError(t, err)
		if len(list) != 2 || list[0].ID != "app" || list[1].ID != "wiki" {
			t.Fatalf("list not ordered by id: %+v", list)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		st := open(t)
		noError(t, st.CreateOIDCClient(ctx(), newOIDCClient("wiki", "one")))
		wantError(t, st.CreateOIDCClient(ctx(), newOIDCClient("wiki", "two")), qrauth.ECONFLICT, "")
		wantError(t, st.CreateOIDCClient(ctx(), newOIDCClient("", "x")), qrauth.EINVALID, "")
		got, err := st.FindOIDCClient(ctx(), "wiki")
		noError(t, err)
		if !bytes.Equal(got.SecretHash, oidc.Hash("one")) {
			t.Fatal("a refused duplicate replaced the client")
		}
		_, err = st.FindOIDCClient(ctx(), "missing")
		wantError(t, err, qrauth.ENOTFOUND, "")
		wantError(t, st.DeleteOIDCClient(ctx(), "missing"), qrauth.ENOTFOUND, "")
	})
	t.Run("DeleteDropsTokens", func(t *testing.T) {
		st := open(t)
		noError(t, st.CreateOIDCClient(ctx(), newOIDCClient("wiki", "s")))
		noError(t, st.CreateOIDCClient(ctx(), newOIDCClient("blog", "s")))
		other := newOIDCToken("a_blog", oidc.KindAccess, "g_blog")
		other.ClientID = "blog"
		noError(t, st.CreateOIDCTokens(ctx(), newOIDCToken("a_1", oidc.KindAccess, "g_1"),
			newOIDCToken("r_1", oidc.KindRefresh, "g_1"), other))
		noError(t, st.DeleteOIDCClient(ctx(), "wiki"))
		_, err := st.FindOIDCClient(ctx(), "wiki")
		wantError(t, err, qrauth.ENOTFOUND, "")
		wantTokens(t, st, false, "a_1", "r_1")
		wantTokens(t, st, true, "a_blog")
		_, err = st.FindOIDCRefreshToken(ctx(), oidc.Hash("value-r_1"))
		wantError(t, err, qrauth.ENOTFOUND, "")
		list, err := st.ListOIDCClients(ctx())
		noError(t, err)
		if len(list) != 1 || list[0].ID != "blog" {
			t.Fatalf("list after delete %+v", list)
		}
	})
}

// testOIDCConfigClients: the config file's clients are created, replaced
// and removed as a set, and never take an administrator's client.
func testOIDCConfigClients(t *testing.T, open oidcOpener) {
	ctx := t.Context
	fromConfig := func(id, secret string) *oidc.Client {
		c := newOIDCClient(id, secret)
		c.Source = oidc.SourceConfig
		return c
	}
	ids := func(st oidc.Store) []string {
		list, err := st.ListOIDCClients(ctx())
		noError(t, err)
		var out []string
		for _, c := range list {
			out = append(out, c.ID+":"+c.Source)
		}
		return out
	}
	st := open(t)
	noError(t, st.CreateOIDCClient(ctx(), newOIDCClient("admin", "a")))
	noError(t, st.SyncOIDCConfigClients(ctx(), []*oidc.Client{fromConfig("wiki", "one"), fromConfig("blog", "")}))
	wantSame(t, "clients", ids(st), []string{"admin:", "blog:config", "wiki:config"})
	noError(t, st.CreateOIDCTokens(ctx(), newOIDCToken("a_1", oidc.KindAccess, "g_1"))) // wiki's

	// Replaced: the new secret counts, CreatedAt and the tokens stay.
	later := fromConfig("wiki", "two")
	later.CreatedAt = t0.Add(time.Hour)
	noError(t, st.SyncOIDCConfigClients(ctx(), []*oidc.Client{later}))
	got, err := st.FindOIDCClient(ctx(), "wiki")
	noError(t, err)
	if !bytes.Equal(got.SecretHash, oidc.Hash("two")) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("replaced client %+v", got)
	}
	wantTokens(t, st, true, "a_1")
	wantSame(t, "clients after blog left", ids(st), []string{"admin:", "wiki:config"})

	// Refused, changing nothing: an administrator's id, a client not
	// marked as from the file, one listed twice.
	wantError(t, st.SyncOIDCConfigClients(ctx(), []*oidc.Client{fromConfig("admin", "x")}), qrauth.ECONFLICT, "")
	wantError(t, st.SyncOIDCConfigClients(ctx(), []*oidc.Client{newOIDCClient("new", "x")}), qrauth.EINVALID, "")
	wantError(t, st.SyncOIDCConfigClients(ctx(), []*oidc.Client{fromConfig("new", "x"), fromConfig("new", "y")}), qrauth.EINVALID, "")
	wantSame(t, "clients after refusals", ids(st), []string{"admin:", "wiki:config"})
	admin, err := st.FindOIDCClient(ctx(), "admin")
	noError(t, err)
	if admin.Source != "" || !bytes.Equal(admin.SecretHash, oidc.Hash("a")) {
		t.Fatalf("administrator's client changed: %+v", admin)
	}

	// An empty file removes them all, with their tokens.
	noError(t, st.SyncOIDCConfigClients(ctx(), nil))
	wantSame(t, "clients after the file emptied", ids(st), []string{"admin:"})
	wantTokens(t, st, false, "a_1")
}

func testOIDCAuthRequests(t *testing.T, open oidcOpener) {
	ctx := t.Context
	t.Run("OK", func(t *testing.T) {
		st := open(t)
		want := newAuthRequest("r_1", "wiki")
		age := int64(300)
		want.MaxAge = &age
		noError(t, st.CreateOIDCAuthRequest(ctx(), newAuthRequestWith(want)))
		got, err := st.FindOIDCAuthRequest(ctx(), "r_1")
		noError(t, err)
		wantSame(t, "request", got, want)
	})
	t.Run("Refused", func(t *testing.T) {
		st := open(t)
		noError(t, st.CreateOIDCAuthRequest(ctx(), newAuthRequest("r_1", "wiki")))
		dup := newAuthRequest("r_1", "blog")
		wantError(t, st.CreateOIDCAuthRequest(ctx(), dup), qrauth.ECONFLICT, "")
		wantError(t, st.CreateOIDCAuthRequest(ctx(), newAuthRequest("", "wiki")), qrauth.EINVALID, "")
		got, _ := st.FindOIDCAuthRequest(ctx(), "r_1")
		if got.ClientID != "wiki" {
			t.Fatal("a refused duplicate replaced the request")
		}
		_, err := st.FindOIDCAuthRequest(ctx(), "missing")
		wantError(t, err, qrauth.ENOTFOUND, "")
		_, err = st.UpdateOIDCAuthRequest(ctx(), "missing", func(*oidc.AuthRequest) error { return nil })
		wantError(t, err, qrauth.ENOTFOUND, "")
		wantError(t, st.DeleteOIDCAuthRequest(ctx(), "missing"), qrauth.ENOTFOUND, "")
	})
	t.Run("UpdateErrorChangesNothing", func(t *testing.T) {
		st := open(t)
		noError(t, st.CreateOIDCAuthRequest(ctx(), newAuthRequest("r_1", "wiki")))
		stop := qrauth.Errorf(qrauth.ECONFLICT, "stop", "stop")
		_, err := st.UpdateOIDCAuthRequest(ctx(), "r_1", func(r *oidc.AuthRequest) error {
			r.Done, r.CodeHash = true, oidc.Hash("code")
			return stop
		})
		wantError(t, err, qrauth.ECONFLICT, "stop")
		_, err = st.UpdateOIDCAuthRequest(ctx(), "r_1", func(r *oidc.AuthRequest) error {
			r.ID = "r_2"
			return nil
		})
		wantError(t, err, qrauth.EINVALID, "")
		got, _ := st.FindOIDCAuthRequest(ctx(), "r_1")
		wantSame(t, "request after refused updates", got, newAuthRequest("r_1", "wiki"))
		_, err = st.FindOIDCAuthRequestByCode(ctx(), oidc.Hash("code"))
		wantError(t, err, qrauth.ENOTFOUND, "")
		_, err = st.FindOIDCAuthRequest(ctx(), "r_2")
		wantError(t, err, qrauth.ENOTFOUND, "")
	})
	t.Run("Code", func(t *testing.T) {
		st := open(t)
		noError(t, st.CreateOIDCAuthRequest(ctx(), newAuthRequest("r_1", "wiki")))
		noError(t, st.CreateOIDCAuthRequest(ctx(), newAuthRequest("r_2", "wiki")))
		_, err := st.FindOIDCAuthRequestByCode(ctx(), nil)
		wantError(t, err, qrauth.ENOTFOUND, "")
		setCode := func(id, code string) error {
			_, err := st.UpdateOIDCAuthRequest(ctx(), id, func(r *oidc.AuthRequest) error {
				r.CodeHash, r.CodeExpiresAt = oidc.Hash(code), t0.Add(time.Minute)
				return nil
			})
			return err
		}
		noError(t, setCode("r_1", "code-1"))
		got, err := st.FindOIDCAuthRequestByCode(ctx(), oidc.Hash("code-1"))
		noError(t, err)
		if got.ID != "r_1" || !got.CodeExpiresAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("by code: %+v", got)
		}
		// One code, one request.
		wantError(t, setCode("r_2", "code-1"), qrauth.EINVALID, "")
		// A new code replaces the old one.
		noError(t, setCode("r_1", "code-2"))
		_, err = st.FindOIDCAuthRequestByCode(ctx(), oidc.Hash("code-1"))
		wantError(t, err, qrauth.ENOTFOUND, "")
		// Deleting the request forgets its code.
		noError(t, st.DeleteOIDCAuthRequest(ctx(), "r_1"))
		_, err = st.FindOIDCAuthRequestByCode(ctx(), oidc.Hash("code-2"))
		wantError(t, err, qrauth.ENOTFOUND, "")
		noError(t, setCode("r_2", "code-2")) // free again
	})
}

func newAuthRequestWith(r *oidc.AuthRequest) *oidc.AuthRequest {
	cp := *r
	return &cp
}

// testOIDCSingleUseCode: the provider spends a code with an update that
// fails once the request is exchanged; the store's update is atomic, so
// of many concurrent exchanges exactly one wins.
func testOIDCSingleUseCode(t *testing.T, open oidcOpener) {
	st := open(t)
	r := newAuthRequest("r_1", "wiki")
	r.CodeHash = oidc.Hash("code")
	noError(t, st.CreateOIDCAuthRequest(t.Context(), r))
	used := qrauth.Errorf(qrauth.ECONFLICT, "used", "used")
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.UpdateOIDCAuthRequest(context.Background(), "r_1", func(r *oidc.AuthRequest) error {
				if r.Exchanged {
					return used
				}
				r.Exchanged = true
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		if err == nil {
			won++
		} else {
			wantError(t, err, qrauth.ECONFLICT, "used")
		}
	}
	if won != 1 {
		t.Fatalf("%d exchanges of one code succeeded", won)
	}
	got, err := st.FindOIDCAuthRequestByCode(t.Context(), oidc.Hash("code"))
	noError(t, err)
	if !got.Exchanged {
		t.Fatal("not marked exchanged")
	}
}

func testOIDCTokens(t *testing.T, open oidcOpener) {
	ctx := t.Context
	t.Run("OK", func(t *testing.T) {
		st := open(t)
		at, rt := newOIDCToken("a_1", oidc.KindAccess, "g_1"), newOIDCToken("r_1", oidc.KindRefresh, "g_1")
		noError(t, st.CreateOIDCTokens(ctx(), at, rt))
		got, err := st.FindOIDCToken(ctx(), "a_1")
		noError(t, err)
		wantSame(t, "access token", got, newOIDCToken("a_1", oidc.KindAccess, "g_1"))
		got, err = st.FindOIDCRefreshToken(ctx(), oidc.Hash("value-r_1"))
		noError(t, err)
		wantSame(t, "refresh token", got, newOIDCToken("r_1", oidc.KindRefresh, "g_1"))
		// An access token is not found as a refresh token.
		_, err = st.FindOIDCRefreshToken(ctx(), nil)
		wantError(t, err, qrauth.ENOTFOUND, "")
		_, err = st.FindOIDCRefreshToken(ctx(), oidc.Hash("value-a_1"))
		wantError(t, err, qrauth.ENOTFOUND, "")
	})
	t.Run("RefusedChangesNothing", func(t *testing.T) {
		st := open(t)
		noError(t, st.CreateOIDCTokens(ctx(), newOIDCToken("a_1", oidc.KindAccess, "g_1")))
		noHash := newOIDCToken("r_x", oidc.KindRefresh, "g_1")
		noHash.Hash = nil
		badKind := newOIDCToken("x_1", "id", "g_1")
		noGrant := newOIDCToken("a_x", oidc.KindAccess, "")
		for name, tok := range map[string]*oidc.Token{"NoHash": noHash, "BadKind": badKind, "NoGrant": noGrant} {
			err := st.CreateOIDCTokens(ctx(), newOIDCToken("a_ok_"+name, oidc.KindAccess, "g_1"), tok)
			wantError(t, err, qrauth.EINVALID, "")
			wantTokens(t, st, false, "a_ok_"+name, tok.ID)
		}
		// A duplicate id refuses the whole batch.
		err := st.CreateOIDCTokens(ctx(), newOIDCToken("r_2", oidc.KindRefresh, "g_1"), newOIDCToken("a_1", oidc.KindAccess, "g_2"))
		wantError(t, err, qrauth.ECONFLICT, "")
		wantTokens(t, st, false, "r_2")
		_, err = st.FindOIDCRefreshToken(ctx(), oidc.Hash("value-r_2"))
		wantError(t, err, qrauth.ENOTFOUND, "")
		got, _ := st.FindOIDCToken(ctx(), "a_1")
		if got.GrantID != "g_1" {
			t.Fatal("a refused duplicate replaced the token")
		}
	})
	t.Run("Delete", func(t *testing.T) {
		st := open(t)
		noError(t, st.CreateOIDCTokens(ctx(), newOIDCToken("a_1", oidc.KindAccess, "g_1"), newOIDCToken("r_1", oidc.KindRefresh, "g_1")))
		noError(t, st.DeleteOIDCToken(ctx(), "r_1"))
		_, err := st.FindOIDCRefreshToken(ctx(), oidc.Hash("value-r_1"))
		wantError(t, err, qrauth.ENOTFOUND, "")
		wantTokens(t, st, true, "a_1")
		wantError(t, st.DeleteOIDCToken(ctx(), "r_1"), qrauth.ENOTFOUND, "")
	})
}

func testOIDCRefreshRotation(t *testing.T, open oidcOpener) {
	ctx := t.Context
	t.Run("OK", func(t *testing.T) {
		st := open(t)
		noError(t, st.CreateOIDCTokens(ctx(), newOIDCToken("a_1", oidc.KindAccess, "g_1"), newOIDCToken("r_1", oidc.KindRefresh, "g_1")))
		noError(t, st.RotateOIDCRefreshToken(ctx(), oidc.Hash("value-r_1"),
			newOIDCToken("a_2", oidc.KindAccess, "g_1"), newOIDCToken("r_2", oidc.KindRefresh, "g_1")))
		_, err := st.FindOIDCRefreshToken(ctx(), oidc.Hash("value-r_1"))
		wantError(t, err, qrauth.ENOTFOUND, "")
		got, err := st.FindOIDCRefreshToken(ctx(), oidc.Hash("value-r_2"))
		noError(t, err)
		if got.ID != "r_2" {
			t.Fatalf("rotated to %+v", got)
		}
		wantTokens(t, st, true, "a_1", "a_2") // access tokens live on until they expire
	})
	t.Run("SpentOnce", func(t *testing.T) {
		st := open(t)
		noError(t, st.CreateOIDCTokens(ctx(), newOIDCToken("r_1", oidc.KindRefresh, "g_1")))
		noError(t, st.RotateOIDCRefreshToken(ctx(), oidc.Hash("value-r_1"), newOIDCToken("r_2", oidc.KindRefresh, "g_1")))
		err := st.RotateOIDCRefreshToken(ctx(), oidc.Hash("value-r_1"), newOIDCToken("a_3", oidc.KindAccess, "g_1"), newOIDCToken("r_3", oidc.KindRefresh, "g_1"))
		wantError(t, err, qrauth.ENOTFOUND, "")
		wantTokens(t, st, false, "a_3", "r_3")
		wantError(t, st.RotateOIDCRefreshToken(ctx(), nil, newOIDCToken("r_4", oidc.KindRefresh, "g_1")), qrauth.ENOTFOUND, "")
		wantTokens(t, st, false, "r_4")
	})
	t.Run("InvalidChangesNothing", func(t *testing.T) {
		st := open(t)
		noError(t, st.CreateOIDCTokens(ctx(), newOIDCToken("r_1", oidc.KindRefresh, "g_1")))
		bad := newOIDCToken("r_2", oidc.KindRefresh, "g_1")
		bad.Hash = nil
		wantError(t, st.RotateOIDCRefreshToken(ctx(), oidc.Hash("value-r_1"), bad), qrauth.EINVALID, "")
		_, err := st.FindOIDCRefreshToken(ctx(), oidc.Hash("value-r_1"))
		noError(t, err)
	})
	t.Run("Concurrent", func(t *testing.T) {
		st := open(t)
		noError(t, st.CreateOIDCTokens(ctx(), newOIDCToken("r_0", oidc.KindRefresh, "g_1")))
		const n = 16
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- st.RotateOIDCRefreshToken(context.Background(), oidc.Hash("value-r_0"),
					newOIDCToken(fmt.Sprintf("r_new_%d", i), oidc.KindRefresh, "g_1"))
			}()
		}
		wg.Wait()
		close(errs)
		won := 0
		for err := range errs {
			if err == nil {
				won++
			} else {
				wantError(t, err, qrauth.ENOTFOUND, "")
			}
		}
		if won != 1 {
			t.Fatalf("one refresh token rotated %d times", won)
		}
	})
}

func testOIDCRevokeGrant(t *testing.T, open oidcOpener) {
	ctx := t.Context
	st := open(t)
	noError(t, st.CreateOIDCTokens(ctx(), newOIDCToken("a_1", oidc.KindAccess, "g_1"), newOIDCToken("r_1", oidc.KindRefresh, "g_1"),
		newOIDCToken("a_other", oidc.KindAccess, "g_2"), newOIDCToken("r_other", oidc.KindRefresh, "g_2")))
	// The grant survives rotation: its new tokens are revoked with it.
	noError(t, st.RotateOIDCRefreshToken(ctx(), oidc.Hash("value-r_1"),
		newOIDCToken("a_2", oidc.KindAccess, "g_1"), newOIDCToken("r_2", oidc.KindRefresh, "g_1")))
	noError(t, st.DeleteOIDCToken(ctx(), "a_1")) // one already gone: no matter
	noError(t, st.RevokeOIDCGrant(ctx(), "g_1"))
	wantTokens(t, st, false, "a_1", "a_2", "r_1", "r_2")
	_, err := st.FindOIDCRefreshToken(ctx(), oidc.Hash("value-r_2"))
	wantError(t, err, qrauth.ENOTFOUND, "")
	wantTokens(t, st, true, "a_other", "r_other")
	// Revoking again, or a grant never seen, is no error.
	noError(t, st.RevokeOIDCGrant(ctx(), "g_1"))
	noError(t, st.RevokeOIDCGrant(ctx(), "g_unknown"))
	wantError(t, st.RevokeOIDCGrant(ctx(), ""), qrauth.EINVALID, "")
	// A grant whose id is a prefix of another's is its own grant.
	noError(t, st.CreateOIDCTokens(ctx(), newOIDCToken("a_g", oidc.KindAccess, "g"), newOIDCToken("a_g3", oidc.KindAccess, "g_3")))
	noError(t, st.RevokeOIDCGrant(ctx(), "g"))
	wantTokens(t, st, false, "a_g")
	wantTokens(t, st, true, "a_g3", "a_other")
}

func testOIDCKeys(t *testing.T, open oidcOpener) {
	ctx := t.Context
	st := open(t)
	keys, err := st.ListOIDCKeys(ctx())
	noError(t, err)
	if len(keys) != 0 {
		t.Fatalf("a new store has keys: %+v", keys)
	}
	k1 := &oidc.SigningKey{ID: "k1", Alg: oidc.AlgRS256, Private: []byte("sealed-1"), CreatedAt: t0,
		RetiredAt: t0.Add(time.Hour), VerifyUntil: t0.Add(25 * time.Hour)}
	k2 := &oidc.SigningKey{ID: "k2", Alg: oidc.AlgEdDSA, Private: []byte("sealed-2"), CreatedAt: t0.Add(time.Hour)}
	noError(t, st.PutOIDCKeys(ctx(), []*oidc.SigningKey{k1, k2}))
	keys, err = st.ListOIDCKeys(ctx())
	noError(t, err)
	wantSame(t, "keys", keys, []*oidc.SigningKey{k1, k2})
	// Put replaces the set.
	noError(t, st.PutOIDCKeys(ctx(), []*oidc.SigningKey{k2}))
	keys, _ = st.ListOIDCKeys(ctx())
	wantSame(t, "keys after replace", keys, []*oidc.SigningKey{k2})
	// A key without an id or a private key is refused, changing nothing.
	wantError(t, st.PutOIDCKeys(ctx(), []*oidc.SigningKey{k1, {ID: "k3", Alg: oidc.AlgRS256}}), qrauth.EINVALID, "")
	wantError(t, st.PutOIDCKeys(ctx(), []*oidc.SigningKey{{Alg: oidc.AlgRS256, Private: []byte("x")}}), qrauth.EINVALID, "")
	keys, _ = st.ListOIDCKeys(ctx())
	wantSame(t, "keys after refused puts", keys, []*oidc.SigningKey{k2})
}

// testOIDCUpdateKeys: UpdateOIDCKeys stores and returns what fn makes of
// the stored set; an error from fn, or a bad key, changes nothing.
func testOIDCUpdateKeys(t *testing.T, open oidcOpener) {
	ctx := t.Context
	st := open(t)
	k1 := &oidc.SigningKey{ID: "k1", Alg: oidc.AlgRS256, Private: []byte("sealed-1"), CreatedAt: t0}
	k2 := &oidc.SigningKey{ID: "k2", Alg: oidc.AlgRS256, Private: []byte("sealed-2"), CreatedAt: t0.Add(time.Hour),
		SignFrom: t0.Add(time.Hour + time.Minute)}
	got, err := st.UpdateOIDCKeys(ctx(), func(have []*oidc.SigningKey) ([]*oidc.SigningKey, error) {
		if len(have) != 0 {
			t.Errorf("a new store has keys: %+v", have)
		}
		return []*oidc.SigningKey{k1}, nil
	})
	noError(t, err)
	wantSame(t, "first update", got, []*oidc.SigningKey{k1})
	got, err = st.UpdateOIDCKeys(ctx(), func(have []*oidc.SigningKey) ([]*oidc.SigningKey, error) {
		wantSame(t, "keys given to fn", have, []*oidc.SigningKey{k1})
		have[0].RetiredAt, have[0].VerifyUntil = k2.SignFrom, k2.SignFrom.Add(24*time.Hour)
		return append(have, k2), nil
	})
	noError(t, err)
	r1 := *k1
	r1.RetiredAt, r1.VerifyUntil = k2.SignFrom, k2.SignFrom.Add(24*time.Hour)
	want := []*oidc.SigningKey{&r1, k2}
	wantSame(t, "rotation", got, want)
	keys, err := st.ListOIDCKeys(ctx())
	noError(t, err)
	wantSame(t, "listed after rotation", keys, want)

	stop := qrauth.Errorf(qrauth.ECONFLICT, "stop", "stop")
	_, err = st.UpdateOIDCKeys(ctx(), func(have []*oidc.SigningKey) ([]*oidc.SigningKey, error) {
		return nil, stop
	})
	wantError(t, err, qrauth.ECONFLICT, "stop")
	_, err = st.UpdateOIDCKeys(ctx(), func(have []*oidc.SigningKey) ([]*oidc.SigningKey, error) {
		return append(have, &oidc.SigningKey{ID: "k3", Alg: oidc.AlgEdDSA}), nil
	})
	wantError(t, err, qrauth.EINVALID, "")
	_, err = st.UpdateOIDCKeys(ctx(), nil)
	wantError(t, err, qrauth.EINVALID, "")
	keys, _ = st.ListOIDCKeys(ctx())
	wantSame(t, "keys after refused updates", keys, want)
}

// testOIDCConcurrentKeyCreation: instances starting at once on an empty
// store each make a key "if there is none"; through UpdateOIDCKeys exactly
// one is stored, and every caller gets that one back.
func testOIDCConcurrentKeyCreation(t *testing.T, open oidcOpener) {
	st := open(t)
	const n = 8
	got := make([][]*oidc.SigningKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := &oidc.SigningKey{ID: fmt.Sprintf("k%d", i), Alg: oidc.AlgEdDSA, Private: []byte("sealed"), CreatedAt: t0}
			<-start
			got[i], errs[i] = st.UpdateOIDCKeys(context.Background(), func(have []*oidc.SigningKey) ([]*oidc.SigningKey, error) {
				for _, k := range have {
					if k.Alg == oidc.AlgEdDSA && k.RetiredAt.IsZero() {
						return have, nil
					}
				}
				return append(have, mine), nil
			})
		}()
	}
	close(start)
	wg.Wait()
	keys, err := st.ListOIDCKeys(t.Context())
	noError(t, err)
	if len(keys) != 1 {
		t.Fatalf("%d concurrent creations stored %d keys: %+v", n, len(keys), keys)
	}
	for i := range n {
		noError(t, errs[i])
		wantSame(t, fmt.Sprintf("keys caller %d adopted", i), got[i], keys)
	}
}

func testOIDCConsentAndSessions(t *testing.T, open oidcOpener) {
	ctx := t.Context
	st := open(t)
	_, err := st.FindOIDCConsent(ctx(), "u_ada", "wiki")
	wantError(t, err, qrauth.ENOTFOUND, "")
	noError(t, st.PutOIDCConsent(ctx(), &oidc.Consent{UserID: "u_ada", ClientID: "wiki", Scopes: []string{"profile"}}))
	noError(t, st.PutOIDCConsent(ctx(), &oidc.Consent{UserID: "u_ada", ClientID: "blog", Scopes: []string{"email"}}))
	noError(t, st.PutOIDCConsent(ctx(), &oidc.Consent{UserID: "u_ada", ClientID: "wiki", Scopes: []string{"profile", "email"}}))
	c, err := st.FindOIDCConsent(ctx(), "u_ada", "wiki")
	noError(t, err)
	wantSame(t, "consent", c, &oidc.Consent{UserID: "u_ada", ClientID: "wiki", Scopes: []string{"profile", "email"}})
	_, err = st.FindOIDCConsent(ctx(), "u_bob", "wiki")
	wantError(t, err, qrauth.ENOTFOUND, "")
	wantError(t, st.PutOIDCConsent(ctx(), &oidc.Consent{UserID: "", ClientID: "wiki"}), qrauth.EINVALID, "")
	wantError(t, st.PutOIDCConsent(ctx(), &oidc.Consent{UserID: "u_ada", ClientID: ""}), qrauth.EINVALID, "")

	_, err = st.FindOIDCSessionInfo(ctx(), "s_1")
	wantError(t, err, qrauth.ENOTFOUND, "")
	si := &oidc.SessionInfo{SessionID: "s_1", AMR: []string{"hwk", "otp", "mfa"}, AuthTime: t0, ExpiresAt: t0.Add(time.Hour)}
	noError(t, st.PutOIDCSessionInfo(ctx(), si))
	got, err := st.FindOIDCSessionInfo(ctx(), "s_1")
	noError(t, err)
	wantSame(t, "session info", got, si)
	wantError(t, st.PutOIDCSessionInfo(ctx(), &oidc.SessionInfo{}), qrauth.EINVALID, "")
}

func testOIDCPurge(t *testing.T, open oidcOpener) {
	ctx := t.Context
	st := open(t)
	now := t0.Add(time.Hour)
	old, live := newAuthRequest("r_old", "wiki"), newAuthRequest("r_live", "wiki")
	old.CodeHash, old.ExpiresAt = oidc.Hash("old-code"), now // ExpiresAt == now: gone
	live.CodeHash, live.ExpiresAt = oidc.Hash("live-code"), now.Add(time.Second)
	noError(t, st.CreateOIDCAuthRequest(ctx(), old))
	noError(t, st.CreateOIDCAuthRequest(ctx(), live))
	oldRT, liveRT := newOIDCToken("r_old", oidc.KindRefresh, "g_1"), newOIDCToken("r_live", oidc.KindRefresh, "g_1")
	oldRT.ExpiresAt, liveRT.ExpiresAt = now.Add(-time.Second), now.Add(time.Hour)
	noError(t, st.CreateOIDCTokens(ctx(), oldRT, liveRT))
	noError(t, st.PutOIDCSessionInfo(ctx(), &oidc.SessionInfo{SessionID: "s_old", ExpiresAt: now}))
	noError(t, st.PutOIDCSessionInfo(ctx(), &oidc.SessionInfo{SessionID: "s_live", ExpiresAt: now.Add(time.Minute)}))

	noError(t, st.PurgeOIDC(ctx(), now))

	_, err := st.FindOIDCAuthRequest(ctx(), "r_old")
	wantError(t, err, qrauth.ENOTFOUND, "")
	_, err = st.FindOIDCAuthRequestByCode(ctx(), oidc.Hash("old-code"))
	wantError(t, err, qrauth.ENOTFOUND, "")
	_, err = st.FindOIDCAuthRequestByCode(ctx(), oidc.Hash("live-code"))
	noError(t, err)
	wantTokens(t, st, false, "r_old")
	wantTokens(t, st, true, "r_live")
	_, err = st.FindOIDCRefreshToken(ctx(), oidc.Hash("value-r_old"))
	wantError(t, err, qrauth.ENOTFOUND, "")
	_, err = st.FindOIDCSessionInfo(ctx(), "s_old")
	wantError(t, err, qrauth.ENOTFOUND, "")
	_, err = st.FindOIDCSessionInfo(ctx(), "s_live")
	noError(t, err)
	// A purged grant's index is gone too: revoking it is harmless.
	noError(t, st.RevokeOIDCGrant(ctx(), "g_1"))
	wantTokens(t, st, false, "r_live")
}
