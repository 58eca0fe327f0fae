package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/server/oidcflow"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/oauth2"
)

// relyingParty is a small web app signing its users in with qrauth through
// golang.org/x/oauth2 and coreos/go-oidc, as docs/integration.md shows.
type relyingParty struct {
	origin   string
	conf     *oauth2.Config
	verifier *gooidc.IDTokenVerifier
	provider *gooidc.Provider

	mu      sync.Mutex
	state   string
	pkce    string
	last    *oauth2.Token
	lastID  *gooidc.IDToken
	lastErr string
	params  url.Values // extra authorization parameters for the next sign-in
	// hold makes the callback keep the code (held) and show it, without
	// exchanging it: the refusal tests exchange it themselves.
	hold bool
	held string
}

func startRP(t *testing.T, issuer, clientID, secret string) *relyingParty {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rp := &relyingParty{origin: "http://" + ln.Addr().String()}
	ctx := context.Background()
	rp.provider, err = gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	rp.conf = &oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: rp.provider.Endpoint(),
		RedirectURL: rp.origin + "/callback", Scopes: []string{gooidc.ScopeOpenID, "profile", "email", gooidc.ScopeOfflineAccess}}
	rp.verifier = rp.provider.Verifier(&gooidc.Config{ClientID: clientID, SupportedSigningAlgs: []string{"RS256", "EdDSA"}})
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		rp.state, rp.pkce = oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(rp.pkce), gooidc.Nonce("n-" + rp.state[:8])}
		for k, v := range rp.params {
			opts = append(opts, oauth2.SetAuthURLParam(k, v[0]))
		}
		http.Redirect(w, r, rp.conf.AuthCodeURL(rp.state, opts...), http.StatusFound)
	})
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		fail := func(msg string) {
			rp.lastErr = msg
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>RP</title></head><body><main><h1 id="error">%s</h1></main></body></html>`, msg)
		}
		if e := r.FormValue("error"); e != "" {
			fail(e)
			return
		}
		if r.FormValue("state") != rp.state {
			fail("state mismatch")
			return
		}
		if rp.hold {
			rp.held, rp.lastErr = r.FormValue("code"), ""
			fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>RP</title></head><body><main><h1 id="held">code held</h1></main></body></html>`)
			return
		}
		tok, err := rp.conf.Exchange(r.Context(), r.FormValue("code"), oauth2.VerifierOption(rp.pkce))
		if err != nil {
			fail("exchange: " + err.Error())
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		id, err := rp.verifier.Verify(r.Context(), raw)
		if err != nil {
			fail("verify: " + err.Error())
			return
		}
		if id.Nonce != "n-"+rp.state[:8] {
			fail("nonce")
			return
		}
		var claims struct {
			Name string `json:"name"`
		}
		id.Claims(&claims)
		rp.last, rp.lastID, rp.lastErr = tok, id, ""
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>RP</title></head><body><main><h1 id="user">%s</h1><p id="sub">%s</p></main></body></html>`, claims.Name, id.Subject)
	})
	// Where RP-initiated logout lands: a real page, so the axe watch that
	// checks every page the browser shows finds a well-formed one.
	mux.HandleFunc("/bye", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>RP</title></head><body><main><h1 id="bye">signed out</h1></main></body></html>`)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return rp
}

func registerClient(t *testing.T, m *Main, id, secret string, redirect, postLogout []string) {
	t.Helper()
	// The name's markup must show as text.
	c := &oidc.Client{ID: id, Name: "Example <b>Wiki</b>", RedirectURIs: redirect, PostLogoutURIs: postLogout,
		Scopes: []string{"profile", "email", "offline_access"}, SkipConsent: true, CreatedAt: time.Now()}
	if secret != "" {
		c.SecretHash = oidc.Hash(secret)
	} else {
		c.Public = true
	}
	if err := m.DB.CreateOIDCClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

func randomSecret(t *testing.T) string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestOIDCRelyingParty: a real relying party (x/oauth2 + go-oidc) signs a
// person in through qrauth's QR page in headless Chromium.
func TestOIDCRelyingParty(t *testing.T) {
	clock := new(testClock)
	m := oidcRunMain(t, func(m *Main) { m.Config.Now = clock.now })
	origin := m.Server.Origin()
	secret := randomSecret(t)
	ctx, problems := newChromium(t)

	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 555 00 11", Name: "Pixel 8"})
	if err != nil {
		t.Fatal(err)
	}
	// Sign up once on qrauth's own page, then sign out.
	if err := chromedp.Run(ctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	// A sign-up on qrauth's own page names no relying site to the phone.
	if site := scanAndApprove(t, ctx, dev, true); site != "" {
		t.Fatalf("a plain sign-up names the site %q to the phone", site)
	}
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#signup-name", "Ada Lovelace", chromedp.ByQuery),
		chromedp.Click("#signup-submit", chromedp.ByQuery),
		chromedp.WaitVisible(`#user-name`, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, chromedp.Click("#logout", chromedp.ByQuery)); err != nil && !strings.Contains(err.Error(), "navigated or closed") {
		t.Fatal(err)
	}
	waitState(t, ctx, "waiting")

	rp := startRPLate(t, m, origin, secret)
	// A browser without an open authorization request: no site to name.
	if res, err := http.Get(origin + "/oidc/pending"); err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("pending without a request: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	// app → authorize → QR page (naming the site) → phone approves → back
	// at the app.
	var site, title string
	if err := chromedp.Run(ctx, chromedp.Navigate(rp.origin+"/login"),
		chromedp.WaitVisible("#login-site", chromedp.ByQuery),
		chromedp.Text("#login-site", &site, chromedp.ByQuery),
		chromedp.Title(&title),
	); err != nil {
		t.Fatal(err)
	}
	if site != "Example <b>Wiki</b> asks you to sign in with qrauth." || !strings.Contains(title, "Example <b>Wiki</b>") {
		t.Fatalf("login page names the site %q (title %q)", site, title)
	}
	saveScreenshot(t, ctx, "oidc-login.png")
	// The phone names the site too: its registered name, markup and all,
	// as the login page does.
	if site := scanAndApprove(t, ctx, dev, false); site != "Example <b>Wiki</b>" {
		t.Fatalf("the phone names the site %q", site)
	}
	var name, sub string
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible(`#user, #error`, chromedp.ByQuery),
		chromedp.Text("main", &name, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(name, "Ada Lovelace") {
		t.Fatalf("relying party shows %q (err %q)", name, rp.lastErr)
	}
	chromedp.Run(ctx, chromedp.Text("#sub", &sub, chromedp.ByQuery))
	u, err := m.DB.FindUserByID(context.Background(), qrauth.UserID(sub))
	if err != nil || u.Name != "Ada Lovelace" || strings.Contains(sub, u.PhoneIDHash) {
		t.Fatalf("sub %q: %v %+v", sub, err, u)
	}
	var claims struct {
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
		AuthTime int64    `json:"auth_time"`
	}
	rp.lastID.Claims(&claims)
	if len(claims.AMR) == 0 || claims.AMR[0] != "hwk" || claims.AuthTime == 0 || claims.ACR == "" {
		t.Fatalf("claims %+v", claims)
	}

	t.Run("Refresh", func(t *testing.T) {
		old := rp.last
		src := rp.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: old.RefreshToken})
		nt, err := src.Token()
		if err != nil {
			t.Fatal(err)
		}
		if nt.RefreshToken == "" || nt.RefreshToken == old.RefreshToken || nt.AccessToken == old.AccessToken {
			t.Fatalf("no rotation: %+v", nt)
		}
		// The old refresh token is spent.
		if _, err := rp.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: old.RefreshToken}).Token(); err == nil {
			t.Fatal("a rotated refresh token worked twice")
		}
		info, err := rp.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(nt))
		if err != nil || info.Subject != sub {
			t.Fatalf("userinfo %+v %v", info, err)
		}
		rp.last = nt
	})

	t.Run("PromptNoneSignedIn", func(t *testing.T) {
		rp.params = url.Values{"prompt": {"none"}}
		defer func() { rp.params = nil }()
		if err := chromedp.Run(ctx, chromedp.Navigate(rp.origin+"/login"), chromedp.WaitVisible(`#user, #error`, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		if rp.lastErr != "" {
			t.Fatalf("prompt=none: %s", rp.lastErr)
		}
	})

	t.Run("TamperedIDToken", func(t *testing.T) {
		raw, _ := rp.last.Extra("id_token").(string)
		if raw == "" {
			raw, _ = rpLastIDToken(rp)
		}
		parts := strings.Split(raw, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = bytes.Replace(payload, []byte(sub), []byte(strings.Repeat("x", len(sub))), 1)
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
		if _, err := rp.verifier.Verify(context.Background(), forged); err == nil {
			t.Fatal("the relying party accepted a tampered ID token")
		}
	})

	t.Run("UnregisteredRedirect", func(t *testing.T) {
		u := rp.conf.AuthCodeURL("s", oauth2.S256ChallengeOption("v"))
		u = strings.Replace(u, url.QueryEscape(rp.origin+"/callback"), url.QueryEscape("http://127.0.0.1:1/evil"), 1)
		res, err := noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); strings.Contains(loc, "evil") || res.StatusCode/100 == 3 {
			t.Fatalf("unregistered redirect_uri: %d %q", res.StatusCode, loc)
		}
	})

	t.Run("WrongSecret", func(t *testing.T) {
		bad := *rp.conf
		bad.ClientSecret = "wrong"
		_, err := bad.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rp.last.RefreshToken}).Token()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
			t.Fatalf("wrong secret: %v", err)
		}
	})

	t.Run("PKCEVerifierMismatch", func(t *testing.T) {
		code, verifier := rp.holdCode(t, ctx)
		_, err := rp.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier+"x"))
		wantGrantError(t, err, "code_verifier")
		// The code is spent by the failed attempt: the right verifier is
		// too late.
		if _, err := rp.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err == nil {
			t.Fatal("a code worked after a failed PKCE check")
		}
	})

	t.Run("CodeReusedRevokesTokens", func(t *testing.T) {
		code, verifier := rp.holdCode(t, ctx)
		tok, err := rp.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if in := rp.introspect(t, tok.AccessToken); !in.Active || in.Subject != sub || in.ClientID != "wiki" {
			t.Fatalf("fresh access token introspects %+v", in)
		}
		_, err = rp.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
		wantGrantError(t, err, "")
		if in := rp.introspect(t, tok.AccessToken); in.Active {
			t.Fatalf("the first use's access token is still active: %+v", in)
		}
		_, err = rp.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		wantGrantError(t, err, "")
		if _, err := rp.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("userinfo answered a revoked access token")
		}
	})

	t.Run("ExpiredCode", func(t *testing.T) {
		code, verifier := rp.holdCode(t, ctx)
		clock.advance(time.Minute + time.Second) // the default CodeTTL is a minute
		_, err := rp.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
		clock.advance(-(time.Minute + time.Second))
		wantGrantError(t, err, "")
		// The refusal was the clock's and changed nothing: back in time,
		// the same code works (so it was not spent, nor refused otherwise).
		if _, err := rp.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("the code within its time: %v", err)
		}
	})

	t.Run("IntrospectAndRevoke", func(t *testing.T) {
		code, verifier := rp.holdCode(t, ctx)
		tok, err := rp.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		in := rp.introspect(t, tok.AccessToken)
		if !in.Active || in.Subject != sub || in.ClientID != "wiki" || in.Exp <= time.Now().Unix() || !strings.Contains(in.Scope, "profile") {
			t.Fatalf("introspection %+v", in)
		}
		if in := rp.introspect(t, "not-a-token"); in.Active {
			t.Fatalf("garbage introspects %+v", in)
		}
		if in := rp.introspect(t, tok.RefreshToken); in.Active {
			t.Fatalf("a refresh token introspects as an access token: %+v", in)
		}
		// Without the client's credentials: refused.
		res, err := http.PostForm(rp.endpoint(t, "introspection_endpoint"), url.Values{"token": {tok.AccessToken}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous introspection: %d", res.StatusCode)
		}

		// Revoking the access token ends it, not the refresh token.
		rp.revoke(t, tok.AccessToken, "access_token")
		if in := rp.introspect(t, tok.AccessToken); in.Active {
			t.Fatalf("revoked access token introspects %+v", in)
		}
		nt, err := rp.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh after revoking the access token: %v", err)
		}
		if in := rp.introspect(t, nt.AccessToken); !in.Active {
			t.Fatalf("new access token introspects %+v", in)
		}
		// Revoking the refresh token ends the grant: its access tokens too.
		rp.revoke(t, nt.RefreshToken, "refresh_token")
		if in := rp.introspect(t, nt.AccessToken); in.Active {
			t.Fatalf("access token of a revoked grant introspects %+v", in)
		}
		_, err = rp.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: nt.RefreshToken}).Token()
		wantGrantError(t, err, "")
		// Revoking an unknown token is not an error (RFC 7009 §2.2).
		rp.revoke(t, "unknown", "")
	})

	t.Run("Logout", func(t *testing.T) {
		raw, _ := rpLastIDToken(rp)
		end := origin + "/oidc/end_session?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {rp.origin + "/bye"},
			"client_id": {rp.conf.ClientID}}.Encode()
		if err := chromedp.Run(ctx, chromedp.Navigate(end), chromedp.Poll(`location.pathname === '/bye'`, nil)); err != nil {
			t.Fatal(err)
		}
		// The qrauth session is gone: the login page shows a QR code again.
		if err := chromedp.Run(ctx, chromedp.Navigate(origin+"/")); err != nil {
			t.Fatal(err)
		}
		waitState(t, ctx, "waiting")
	})
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func rpLastIDToken(rp *relyingParty) (string, bool) {
	s, ok := rp.last.Extra("id_token").(string)
	return s, ok
}

func startRPLate(t *testing.T, m *Main, origin, secret string) *relyingParty {
	// go-oidc reads discovery at start; the client needs the redirect URI
	// of the app's port, so the app starts, then the client is registered
	// with it (the store is read on every request).
	rp := startRP(t, origin, "wiki", secret)
	registerClient(t, m, "wiki", secret, []string{rp.origin + "/callback"}, []string{rp.origin + "/bye"})
	return rp
}

// scanAndApprove scans the QR code the page shows with dev and approves,
// and returns the relying site the challenge named ("" for none).
func scanAndApprove(t *testing.T, ctx context.Context, dev *appclient.Device, signUp bool) string {
	t.Helper()
	waitState(t, ctx, "waiting")
	u, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#qr")))
	if err != nil {
		t.Fatal(err)
	}
	scan, err := dev.Scan(ctx, u, appclient.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { scan.Close() })
	if _, err := scan.Approve(ctx, appclient.ApproveOptions{}); err != nil {
		t.Fatal(err)
	}
	return scan.SiteName()
}

// TestOIDCAdminCommands: clients add|list|remove and rotate-keys over the
// admin socket; the secret is shown once and the JWKS keeps the old keys.
func TestOIDCAdminCommands(t *testing.T) {
	m := MustRunMain(t)
	admin := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runAdmin(context.Background(), append([]string{"-data", m.DataPath, "oidc"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := admin("clients", "add", "-id", "wiki", "-name", "Wiki", "-redirect", "https://wiki.example/cb")
	if code != 0 || !strings.Contains(out, "client secret") {
		t.Fatalf("add: %d %q %q", code, out, errOut)
	}
	secret := strings.TrimSpace(out[strings.LastIndex(out, ": ")+2:])
	c, err := m.DB.FindOIDCClient(context.Background(), "wiki")
	if err != nil || !bytes.Equal(c.SecretHash, oidc.Hash(secret)) || strings.Contains(string(c.SecretHash), secret) {
		t.Fatalf("stored client %+v %v", c, err)
	}
	if code, _, errOut := admin("clients", "add", "-id", "wiki", "-name", "Wiki", "-redirect", "https://wiki.example/cb"); code == 0 || !strings.Contains(errOut, "already") {
		t.Fatalf("duplicate: %d %q", code, errOut)
	}
	if code, _, errOut := admin("clients", "add", "-id", "x", "-name", "X", "-redirect", "/relative"); code == 0 || errOut == "" {
		t.Fatalf("relative redirect: %d %q", code, errOut)
	}
	if code, out, _ := admin("clients", "list"); code != 0 || !strings.Contains(out, "https://wiki.example/cb") || strings.Contains(out, secret) {
		t.Fatalf("list: %d %q", code, out)
	}
	keys := func() int {
		res, err := http.Get(m.Server.Origin() + "/oidc/keys")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v struct{ Keys []any }
		if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		return len(v.Keys)
	}
	if n := keys(); n != 2 {
		t.Fatalf("%d keys before rotation", n)
	}
	if code, _, errOut := admin("rotate-keys"); code != 0 {
		t.Fatalf("rotate: %d %q", code, errOut)
	}
	if n := keys(); n != 4 {
		t.Fatalf("%d keys after rotation, want the old two still published", n)
	}
	if code, _, errOut := admin("clients", "remove", "wiki"); code != 0 {
		t.Fatalf("remove: %d %q", code, errOut)
	}
	if code, _, _ := admin("clients", "remove", "wiki"); code == 0 {
		t.Fatal("removed twice")
	}
}

// testClock is the server's clock in a test: the real time plus an offset
// the test moves, so that expiry needs no sleeping.
type testClock struct{ off atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// oidcRunMain is MustRunMain with tune applied to Main after the flags,
// before Run (a clock, the provider's TTLs).
func oidcRunMain(t *testing.T, tune func(*Main), extra ...string) *Main {
	t.Helper()
	m := NewMain()
	args := append([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "qrauth.db"),
		"-room-rate", "1000", "-room-burst", "1000"}, extra...)
	if err := m.ParseFlags(args, io.Discard); err != nil {
		t.Fatal(err)
	}
	m.LogOutput = io.Discard
	tune(m)
	if err := m.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m
}

// holdCode runs an authorization in the (signed-in) browser and returns
// the code the relying party received and its PKCE verifier, unexchanged.
func (rp *relyingParty) holdCode(t *testing.T, ctx context.Context) (code, verifier string) {
	t.Helper()
	rp.mu.Lock()
	rp.hold, rp.held = true, ""
	rp.mu.Unlock()
	defer func() {
		rp.mu.Lock()
		rp.hold = false
		rp.mu.Unlock()
	}()
	if err := chromedp.Run(ctx, chromedp.Navigate(rp.origin+"/login"), chromedp.WaitVisible(`#held, #error`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.held == "" {
		t.Fatalf("no code: %s", rp.lastErr)
	}
	return rp.held, rp.pkce
}

// wantGrantError checks that err is the token endpoint's invalid_grant,
// its description containing want.
func wantGrantError(t *testing.T, err error, want string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || !strings.Contains(re.ErrorDescription, want) {
		t.Fatalf("want invalid_grant (%q), got %v", want, err)
	}
}

// endpoint reads an endpoint's URL from the provider's discovery document.
func (rp *relyingParty) endpoint(t *testing.T, name string) string {
	t.Helper()
	var d map[string]any
	if err := rp.provider.Claims(&d); err != nil {
		t.Fatal(err)
	}
	u, _ := d[name].(string)
	if u == "" {
		t.Fatalf("discovery has no %s", name)
	}
	return u
}

// introspection is RFC 7662's answer, as a resource server reads it.
type introspection struct {
	Active   bool   `json:"active"`
	Subject  string `json:"sub"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Exp      int64  `json:"exp"`
}

// introspect asks the provider about token, authenticated as the client.
func (rp *relyingParty) introspect(t *testing.T, token string) introspection {
	t.Helper()
	res := rp.postAsClient(t, rp.endpoint(t, "introspection_endpoint"), url.Values{"token": {token}})
	defer res.Body.Close()
	var in introspection
	if res.StatusCode != http.StatusOK {
		t.Fatalf("introspection: %s", res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&in); err != nil {
		t.Fatal(err)
	}
	return in
}

// revoke revokes token (RFC 7009) as the client; the answer must be 200.
func (rp *relyingParty) revoke(t *testing.T, token, hint string) {
	t.Helper()
	v := url.Values{"token": {token}}
	if hint != "" {
		v.Set("token_type_hint", hint)
	}
	res := rp.postAsClient(t, rp.endpoint(t, "revocation_endpoint"), v)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %s", res.Status)
	}
}

func (rp *relyingParty) postAsClient(t *testing.T, endpoint string, form url.Values) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(rp.conf.ClientID), url.QueryEscape(rp.conf.ClientSecret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestOIDCACRSecondFactor: a relying site asks acr_values=urn:qrauth:acr:mfa.
// OATH is on but its policy is off, so only the provider's gate asks for
// the authenticator code after the phone; the ID token then says hwk and
// otp.
func TestOIDCACRSecondFactor(t *testing.T) {
	m := MustRunMain(t, "-key-file", mustKeyFile(t), "-oath")
	origin := m.Server.Origin()
	ctx, problems := newChromium(t)
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 555 00 12", Name: "Pixel 8"})
	if err != nil {
		t.Fatal(err)
	}
	// Sign up, enrol an authenticator on the account page, sign out.
	if err := chromedp.Run(ctx, chromedp.Navigate(origin+wire.PathLogin)); err != nil {
		t.Fatal(err)
	}
	oathScanPage(t, ctx, dev, wire.ModeSignUp)
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible(`#oath-panel[data-state="off"]`, chromedp.ByQuery),
		chromedp.Click("#oath-setup", chromedp.ByQuery),
	); err != nil {
		t.Fatalf("account page: %v", err)
	}
	text, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, ctx, "#oath-qr-img")))
	if err != nil {
		t.Fatal(err)
	}
	k := testutil.ParseOTPAuth(t, text)
	used := k.Step()
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#oath-code", k.Code(used), chromedp.ByQuery),
		chromedp.Click("#oath-confirm", chromedp.ByQuery),
		chromedp.WaitVisible(`#oath-panel[data-state="active"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if err := chromedp.Run(ctx, chromedp.Click("#logout", chromedp.ByQuery)); err != nil && !strings.Contains(err.Error(), "navigated or closed") {
		t.Fatal(err)
	}
	waitState(t, ctx, "waiting")

	rp := startRPLate(t, m, origin, randomSecret(t))
	rp.params = url.Values{"acr_values": {oidcflow.ACRMFA}}
	if err := chromedp.Run(ctx, chromedp.Navigate(rp.origin+"/login")); err != nil {
		t.Fatal(err)
	}
	oathScanPage(t, ctx, dev, wire.ModeLogin)
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#verify[data-state="verify"]`, chromedp.ByQuery)); err != nil {
		t.Fatalf("the site's second factor was not asked: %v", err)
	}
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#verify-code", k.Code(used+1), chromedp.ByQuery),
		chromedp.Click("#verify-submit", chromedp.ByQuery),
	); err != nil && !strings.Contains(err.Error(), "navigated or closed") {
		t.Fatal(err)
	}
	var name string
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#user, #error`, chromedp.ByQuery), chromedp.Text("main", &name, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(name, "Ada Lovelace") {
		t.Fatalf("relying party shows %q (err %q)", name, rp.lastErr)
	}
	var claims struct {
		AMR []string `json:"amr"`
		ACR string   `json:"acr"`
	}
	if err := rp.lastID.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(claims.AMR, "hwk") || !slices.Contains(claims.AMR, "otp") || claims.ACR != oidcflow.ACRMFA {
		t.Fatalf("claims %+v", claims)
	}

	// Signed in with the second factor: the same demand goes straight back.
	if err := chromedp.Run(ctx, chromedp.Navigate(rp.origin+"/login"), chromedp.WaitVisible(`#user, #error`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if rp.lastErr != "" {
		t.Fatalf("second authorization: %s", rp.lastErr)
	}
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestOIDCConsent: a client without skip-consent gets the consent screen
// the first time it asks for a scope the person has not granted it; a
// refusal returns access_denied to the site; a granted scope is not asked
// again; a new scope is.
func TestOIDCConsent(t *testing.T) {
	m := MustRunMain(t)
	origin := m.Server.Origin()
	ctx, problems := newChromium(t)
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 555 00 13", Name: "Pixel 8"})
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(origin+wire.PathLogin)); err != nil {
		t.Fatal(err)
	}
	oathScanPage(t, ctx, dev, wire.ModeSignUp) // signs up Ada and stays signed in
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#user-name`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}

	secret := randomSecret(t)
	rp := startRP(t, origin, "shop", secret)
	if err := m.DB.CreateOIDCClient(context.Background(), &oidc.Client{ID: "shop", Name: "Corner <Shop>",
		RedirectURIs: []string{rp.origin + "/callback"}, Scopes: []string{"profile", "email"},
		SecretHash: oidc.Hash(secret), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	rp.conf.Scopes = []string{gooidc.ScopeOpenID, "profile"}

	// consentShown navigates to the site's login and returns the scopes
	// the consent screen lists.
	consentShown := func(t *testing.T) []string {
		t.Helper()
		var items []string
		var heading string
		if err := chromedp.Run(ctx, chromedp.Navigate(rp.origin+"/login"),
			chromedp.WaitVisible(`#consent`, chromedp.ByQuery),
			chromedp.Text("h1", &heading, chromedp.ByQuery),
			chromedp.Evaluate(`Array.from(document.querySelectorAll('#consent li'), li => li.textContent)`, &items),
		); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(heading, "Corner <Shop>") { // the name as text, escaped
			t.Fatalf("consent heading %q", heading)
		}
		return items
	}
	answer := func(t *testing.T, button string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := chromedp.Run(wctx, chromedp.Click(button, chromedp.ByQuery), chromedp.WaitVisible(`#user, #error`, chromedp.ByQuery)); err != nil {
			var loc, body string
			chromedp.Run(ctx, chromedp.Location(&loc), chromedp.OuterHTML("html", &body))
			t.Fatal(err, loc, body)
		}
	}

	t.Run("PromptNoneConsentRequired", func(t *testing.T) {
		rp.params = url.Values{"prompt": {"none"}}
		defer func() { rp.params = nil }()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := chromedp.Run(wctx, chromedp.Navigate(rp.origin+"/login"), chromedp.WaitVisible(`#user, #error`, chromedp.ByQuery)); err != nil {
			var loc, body string
			chromedp.Run(ctx, chromedp.Location(&loc), chromedp.OuterHTML("html", &body))
			t.Fatal(err, loc, body)
		}
		if rp.lastErr != "consent_required" {
			t.Fatalf("prompt=none without consent: %q", rp.lastErr)
		}
	})
	t.Run("Deny", func(t *testing.T) {
		if got := consentShown(t); !slices.Equal(got, []string{"your name"}) {
			t.Fatalf("consent lists %q", got)
		}
		answer(t, "#consent-deny")
		if rp.lastErr != "access_denied" {
			t.Fatalf("denied: %q", rp.lastErr)
		}
		if _, err := m.DB.FindOIDCConsent(context.Background(), onlyUser(t, m), "shop"); qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
			t.Fatalf("a refusal was recorded as consent: %v", err)
		}
	})
	t.Run("Allow", func(t *testing.T) {
		consentShown(t)
		saveScreenshot(t, ctx, "oidc-consent.png")
		answer(t, "#consent-allow")
		if rp.lastErr != "" {
			t.Fatalf("allowed: %q", rp.lastErr)
		}
	})
	t.Run("NotAskedAgain", func(t *testing.T) {
		if err := chromedp.Run(ctx, chromedp.Navigate(rp.origin+"/login"), chromedp.WaitVisible(`#user, #error`, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		if rp.lastErr != "" {
			t.Fatalf("second sign-in: %q", rp.lastErr)
		}
	})
	t.Run("NewScopeAsked", func(t *testing.T) {
		rp.conf.Scopes = []string{gooidc.ScopeOpenID, "profile", "email"}
		if got := consentShown(t); !slices.Equal(got, []string{"your email address"}) {
			t.Fatalf("consent lists %q", got)
		}
		answer(t, "#consent-allow")
		var claims struct {
			Email string `json:"email"`
		}
		rp.lastID.Claims(&claims)
		if rp.lastErr != "" || claims.Email != "ada@example.com" {
			t.Fatalf("after the new scope: %q %+v", rp.lastErr, claims)
		}
	})
	if p := problems(); len(p) > 0 {
		t.Fatalf("browser console problems:\n%s", strings.Join(p, "\n"))
	}
}

// onlyUser is the id of the one user of m's store.
func onlyUser(t *testing.T, m *Main) string {
	t.Helper()
	users, err := m.DB.ListUsers(context.Background(), "", 10)
	if err != nil || len(users) != 1 {
		t.Fatalf("users %v %v", users, err)
	}
	return string(users[0].ID)
}
