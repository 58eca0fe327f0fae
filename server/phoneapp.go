package server

import (
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/webclient"
	"github.com/qrauth/qrauth/wire"
)

// The phone web app (/app): an installable web app that is the phone side
// of qrauth for people who installed nothing. It is plain files under
// webclient/static/app; the server only maps three paths that cannot live
// under /static/:
//
//	/app                        the app shell (start_url and scope of the manifest)
//	/app/sw.js                  the service worker, allowed to control /app
//	/app/manifest.webmanifest   the web app manifest, with its media type
//
// The app speaks the same protocol as appclient; nothing else on the server
// knows it exists.

// appCSP is the policy of /app: the strict one plus 'wasm-unsafe-eval',
// which lets the page compile the vendored QR decoder's WebAssembly (it does
// not allow eval of JavaScript). Only /app needs it; every other page keeps
// the strict policy.
const appCSP = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; " +
	"style-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; manifest-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func (s *Server) phoneAppRoutes(e *echo.Echo) {
	e.GET(wire.PathPhoneApp, s.handlePhoneApp)
	e.GET(wire.PathPhoneAppWorker, s.handlePhoneAppWorker)
	e.GET(wire.PathPhoneAppManifest, s.handlePhoneAppManifest)
	e.GET(wire.PathAppDevices, s.handleAppListDevices)
}

// handleAppListDevices: GET /api/app/devices, device-signed like
// /api/app/sessions. The phones of the signing device's account, oldest
// first, as GET /api/devices gives them to the account page: a phone can
// show which other phones can sign in (and the person can tell a lost one
// to remove it from a browser). Read-only: removing a phone stays a
// signed-in browser's call.
func (s *Server) handleAppListDevices(c echo.Context) error {
	dev, err := s.authenticateDevice(c)
	if err != nil {
		return err
	}
	return s.listDevices(c, dev.UserID)
}

func appFile(name string) ([]byte, error) {
	b, err := fs.ReadFile(webclient.Files(), "app/"+name)
	if err != nil {
		return nil, qrauth.Internal(err)
	}
	return b, nil
}

func (s *Server) handlePhoneApp(c echo.Context) error {
	b, err := appFile("index.html")
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Security-Policy", appCSP)
	return c.HTMLBlob(http.StatusOK, b)
}

func (s *Server) handlePhoneAppWorker(c echo.Context) error {
	b, err := appFile("sw.js")
	if err != nil {
		return err
	}
	// The worker's own URL is under /app/, which by default would limit it
	// to /app/...; the shell itself is /app.
	c.Response().Header().Set("Service-Worker-Allowed", "/app")
	return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", b)
}

func (s *Server) handlePhoneAppManifest(c echo.Context) error {
	b, err := appFile("manifest.webmanifest")
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/manifest+json", b)
}
