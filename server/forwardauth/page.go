package forwardauth

import (
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/wire"
)

// refusalPage is what a person sees when forward auth refuses: the proxy
// shows it in place of the application (Caddy and Traefik pass it on;
// nginx through error_page 403). It stands alone: on the application's
// host neither qrauth's styles nor scripts would load.
var refusalPage = template.Must(template.New("refusal").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · qrauth</title>
</head>
<body>
<main id="forward-auth" data-reason="{{.Reason}}">
<h1>{{.Title}}</h1>
<p id="message">{{.Message}}</p>
{{if .Account}}<p><a href="{{.Account}}">Your qrauth account</a>: sign out there to sign in as someone else.</p>{{end}}
</main>
</body>
</html>
`))

// refuse answers err: an HTML page for a browser, the usual JSON error body
// for anything else. Either way the status is err's.
func (f *Flow) refuse(c echo.Context, err error) error {
	code := qrauth.ErrorCode(err)
	if code == qrauth.EINTERNAL || !server.WantsHTML(c.Request()) {
		return err
	}
	title := map[string]string{
		qrauth.EFORBIDDEN:    "Access denied",
		qrauth.EUNAUTHORIZED: "Sign-in needed",
		qrauth.EINVALID:      "Cannot continue",
		qrauth.ERATELIMITED:  "Too many requests",
		qrauth.ENOTFOUND:     "Not found",
		qrauth.EEXPIRED:      "Expired",
		qrauth.ECONFLICT:     "Cannot continue",
	}[code]
	var b strings.Builder
	account := ""
	if code == qrauth.EFORBIDDEN {
		account = f.host.Origin() + "/account"
	}
	if err := refusalPage.Execute(&b, map[string]string{"Title": title, "Reason": qrauth.ErrorReason(err),
		"Message": qrauth.ErrorMessage(err), "Account": account}); err != nil {
		return qrauth.Internal(err)
	}
	if c.Request().Method == http.MethodHead {
		c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
		c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(b.Len()))
		return c.NoContent(wire.HTTPStatus(code))
	}
	return c.HTML(wire.HTTPStatus(code), b.String())
}
