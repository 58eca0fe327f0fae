package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
)

// siteFlow names a relying site for browsers that carry its cookie, as
// OpenID Connect does for a browser with an open authorization request.
type siteFlow struct{ name string }

func (f *siteFlow) Name() string                        { return "site" }
func (f *siteFlow) Mount(server.Host, *echo.Echo) error { return nil }
func (f *siteFlow) Gate(context.Context, *qrauth.User, *server.SignIn) (server.Step, error) {
	return server.Step{}, nil
}
func (f *siteFlow) AdminUser(context.Context, *qrauth.User, map[string]any) error { return nil }
func (f *siteFlow) Purge(context.Context, time.Time)                              {}
func (f *siteFlow) Shutdown()                                                     {}

func (f *siteFlow) SiteName(c echo.Context) string {
	if _, err := c.Cookie("test_site"); err != nil {
		return ""
	}
	return f.name
}

// TestChallengeSite: a login room of a browser a flow names a site for
// carries the name in the challenge, cut to wire.MaxSiteName bytes at a
// character boundary; a plain login, and a link room, carry none.
func TestChallengeSite(t *testing.T) {
	// 99 bytes, then a 2-byte character across the 100-byte limit.
	long := strings.Repeat("a", wire.MaxSiteName-1) + "é and more"
	srv := MustOpenServer(t, func(c *testConfig) { c.Extra = []server.Flow{&siteFlow{name: long}} })
	p := newPhone(t, srv, "+41 79 123 45 67")
	signUp(t, srv, p)

	t.Run("Plain", func(t *testing.T) {
		b := newBrowser(t, srv)
		if ch := p.join(b.open()); ch.Type != wire.MsgChallenge || ch.Mode != wire.ModeLogin || ch.Site != nil {
			t.Fatalf("challenge %+v, site %+v: want a login without a site", ch, ch.Site)
		}
	})

	withSite := func(b *browser) {
		u, _ := url.Parse(srv.URL)
		b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "test_site", Value: "1"}})
	}
	t.Run("Named", func(t *testing.T) {
		b := newBrowser(t, srv)
		withSite(b)
		ch := p.join(b.open())
		if ch.Type != wire.MsgChallenge || ch.Site == nil || ch.Site.Name != strings.Repeat("a", wire.MaxSiteName-1) {
			t.Fatalf("challenge %+v, site %+v", ch, ch.Site)
		}
	})

	t.Run("LinkRoomNone", func(t *testing.T) {
		b := signIn(t, srv, p)
		withSite(b)
		ws, resp, err := b.dial("?mode=link")
		if err != nil {
			t.Fatalf("%v %v", err, resp)
		}
		b.ws = ws
		t.Cleanup(func() { ws.Close() })
		second := newPhone(t, srv, "+41 78 000 00 00")
		if ch := second.join(b.next()); ch.Type != wire.MsgChallenge || ch.Mode != wire.ModeLink || ch.Site != nil {
			t.Fatalf("link challenge %+v, site %+v", ch, ch.Site)
		}
	})
}
