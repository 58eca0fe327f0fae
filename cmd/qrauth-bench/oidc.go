package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/oauth2"
)

// The relying site of the oidc command: registered in the in-process
// server's store before the run. Its callback is never dialled: the
// browser stops at the redirect that carries the code, as a browser hands
// it to the site.
const (
	benchClientID   = "bench"
	benchClientName = "Bench Site"
	benchRedirect   = "http://127.0.0.1:9/callback"
)

// httpPerOIDCSignIn counts the HTTP requests of one OpenID Connect
// sign-in: the authorization request, /oidc/login (to the login page), the
// login page, /oidc/pending, the ticket exchange, /oidc/login again (to the
// site with the code) and the token request. The signing keys are fetched
// once per run.
const httpPerOIDCSignIn = 7

// relyingSite is the site's side of an OpenID Connect sign-in: the
// authorization URL, the code exchange (golang.org/x/oauth2, with PKCE)
// and the ID token check (coreos/go-oidc), as docs/integration.md shows.
type relyingSite struct {
	conf     *oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

// registerBenchClient registers the bench's site in the in-process server's
// store and returns its secret.
func registerBenchClient(ctx context.Context, t *target, alg string) (string, error) {
	if t.inproc == nil {
		return "", errors.New("the oidc command registers its site in the store of the server it starts: give no --server")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	secret := base64.RawURLEncoding.EncodeToString(b)
	err := t.inproc.db.CreateOIDCClient(ctx, &oidc.Client{ID: benchClientID, Name: benchClientName,
		RedirectURIs: []string{benchRedirect}, SecretHash: oidc.Hash(secret), SkipConsent: true,
		Scopes: []string{"profile", "email"}, IDTokenAlg: alg, CreatedAt: time.Now()})
	return secret, err
}

// newRelyingSite reads the provider's discovery document, as a site does
// once at start; go-oidc then fetches the signing keys once and keeps them
// (with ctx's client: ctx must last the run).
func (l *loginRunner) newRelyingSite(ctx context.Context, secret, alg string) (*relyingSite, error) {
	ctx = gooidc.ClientContext(ctx, l.http)
	p, err := gooidc.NewProvider(ctx, l.t.Origin)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return &relyingSite{
		conf: &oauth2.Config{ClientID: benchClientID, ClientSecret: secret, Endpoint: p.Endpoint(),
			RedirectURL: benchRedirect, Scopes: []string{gooidc.ScopeOpenID, "profile"}},
		verifier: p.Verifier(&gooidc.Config{ClientID: benchClientID, SupportedSigningAlgs: []string{alg}}),
	}, nil
}

// browserClient is one browser: its own cookies, redirects followed on the
// server up to the site's callback, which it stops at.
func (l *loginRunner) browserClient() (*http.Client, *cookiejar.Jar) {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: l.http.Transport, Timeout: l.stepLimit, Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), benchRedirect) {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			return nil
		}}, jar
}

// browserGet is a browser's GET: it answers the final response's status
// and URL and its body (bounded), after any redirects.
func browserGet(ctx context.Context, c *http.Client, u string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("User-Agent", benchUserAgent)
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

func benchErr(reason, format string, args ...any) error {
	return &qrauth.Error{Code: qrauth.EINTERNAL, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// signInOIDC runs one complete OpenID Connect sign-in of the registered d
// for the bench's site: authorization request → QR login page (which asks
// which site) → phone approves (its challenge must name the site) →
// ticket → session → redirect with the code → token exchange with PKCE →
// ID token verified, nonce checked.
func (l *loginRunner) signInOIDC(ctx context.Context, rp *relyingSite, d *appclient.Device, sessionMade *bool) (timings, error) {
	var tm timings
	ctx, cancel := context.WithTimeout(ctx, 3*l.stepLimit)
	defer cancel()
	br, jar := l.browserClient()
	state, nonce, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()

	start := time.Now()
	resp, _, err := browserGet(ctx, br, rp.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce)))
	if err != nil {
		return tm, &stageError{"authorize", err}
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != wire.PathLogin {
		return tm, &stageError{"authorize", benchErr("not_login_page", "the authorization request ended at %s (%s)", resp.Request.URL, resp.Status)}
	}
	// The login page asks which site this is.
	resp, body, err := browserGet(ctx, br, l.t.URL+"/oidc/pending")
	if err != nil {
		return tm, &stageError{"authorize", err}
	}
	var pending struct {
		ClientName string `json:"client_name"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &pending) != nil || pending.ClientName != benchClientName {
		return tm, &stageError{"authorize", benchErr("no_pending_site", "GET /oidc/pending: %s %.100s", resp.Status, body)}
	}
	tAuth := time.Now()

	dialer := *l.browser
	dialer.Jar = jar
	ws, resp, err := dialer.DialContext(ctx, l.t.BrowserSocket, http.Header{"Origin": {l.t.Origin}, "User-Agent": {benchUserAgent}})
	if err != nil {
		return tm, &stageError{"open", handshakeError(resp, err)}
	}
	defer ws.Close()
	qr, err := expect(ws, time.Now().Add(l.stepLimit), wire.MsgQR)
	if err != nil {
		return tm, &stageError{"open", err}
	}
	tm.open = time.Since(tAuth)
	next, t1, err := l.scanApprove(ctx, cancel, ws, qr, br, "", d, func(s *appclient.Scan) error {
		if s.SiteName() != benchClientName {
			return benchErr("site_not_named", "the challenge names the site %q", s.SiteName())
		}
		return nil
	}, sessionMade, &tm)
	if err != nil {
		return tm, err
	}
	drainClose(ws, time.Now().Add(time.Second))

	// The login page goes on to the page the sign-in names: the provider,
	// which sends the browser back to the site with the code.
	resp, _, err = browserGet(ctx, br, l.t.URL+next)
	if err != nil {
		return tm, &stageError{"redirect", err}
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), benchRedirect) {
		return tm, &stageError{"redirect", benchErr("no_code", "after the sign-in, %s %s went to %q", next, resp.Status, resp.Header.Get("Location"))}
	}
	q := loc.Query()
	if q.Get("state") != state || q.Get("code") == "" {
		return tm, &stageError{"redirect", benchErr("no_code", "the redirect carries no code or another state: %q", loc.RawQuery)}
	}
	tCode := time.Now()

	tok, err := rp.conf.Exchange(gooidc.ClientContext(ctx, l.http), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return tm, &stageError{"token", err}
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return tm, &stageError{"id_token", err}
	}
	if id.Nonce != nonce || id.Subject == "" {
		return tm, &stageError{"id_token", benchErr("nonce", "the ID token has another nonce or no subject")}
	}
	tEnd := time.Now()
	tm.flow, tm.authorize, tm.redirect, tm.token = tEnd.Sub(start), tAuth.Sub(start), tCode.Sub(t1), tEnd.Sub(tCode)
	return tm, nil
}
