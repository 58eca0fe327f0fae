package server

import (
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/webclient"
)

// serveFeaturePage serves the page name without the lines that carry
// data-feature="NAME" for a flow that is not listed (or says it is off),
// as the login page does. The account page marks each flow section's
// script so, so that a flow that is off (its routes absent) is never asked.
func (s *Server) serveFeaturePage(c echo.Context, name string) error {
	b, err := fs.ReadFile(webclient.Files(), name)
	if err != nil {
		return qrauth.Internal(err)
	}
	on := map[string]bool{}
	for _, f := range s.flows {
		en, ok := f.(interface{ Enabled() bool })
		on[f.Name()] = !ok || en.Enabled()
	}
	return c.HTMLBlob(http.StatusOK, withFeatures(b, on))
}
