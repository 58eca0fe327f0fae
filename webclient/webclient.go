// Package webclient holds the browser side of qrauth: the login page, the
// account page and the page a plain camera app lands on, with their
// JavaScript and CSS. They are plain files with no build step, embedded into
// the binary with go:embed, and load nothing from other origins, so they run
// under the server's strict Content-Security-Policy:
//
//	default-src 'self'; img-src 'self' data:; connect-src 'self';
//	style-src 'self'; script-src 'self'; frame-ancestors 'none'
//
// The server maps the files of Files like this:
//
//	/            index.html    login: shows the QR code, follows the room over /ws/browser
//	/account     account.html  profile, signed-in browsers, phones, "link a phone"
//	/q/{PSK}     scan.html     opened by a plain camera app; never contacts any API, hands
//	                           the code to /app (in the URL fragment) when this browser holds a key
//	/t/{TOKEN}   tx-scan.html  the same for a transaction approval code
//	(anything)   404.html      status 404 for a browser that asked for HTML
//	/favicon.ico favicon.svg   (every page also links it)
//	/static/...  everything    app.css, common.js, login.js, account.js, favicon.svg
//	/app         app/index.html the phone web app (server/phoneapp.go; also /app/sw.js
//	                           and /app/manifest.webmanifest); its code is under app/,
//	                           the vendored QR decoder under vendor/ (see vendor/README.md)
//
// The pages use these HTTP calls, all same-origin JSON:
//
//	GET    /api/me             200 {"user":{...},"session_id":"..."}; 401 when signed out
//	PATCH  /api/me             {"name","email"} → 200 {"user":{...}}
//	POST   /api/session        {"ticket"} → 200, sets the session cookie
//	GET    /api/sessions       200 {"sessions":[...]}
//	DELETE /api/sessions/{id}  204
//	GET    /api/devices        200 {"devices":[...]}
//	POST   /api/logout         204
//
// Errors are read from a JSON body {"message": "..."} and shown as they are.
package webclient

import (
	"embed"
	"io/fs"
)

// Page names inside Files.
const (
	LoginPage   = "index.html"
	AccountPage = "account.html"
	ScanPage    = "scan.html"
	// NotFoundPage answers a browser (a request that accepts text/html)
	// that opened an address with nothing behind it.
	NotFoundPage = "404.html"
	// TransactionScanPage is opened by a plain camera app that scanned a
	// transaction approval code (/t/TOKEN); like ScanPage it runs no code.
	TransactionScanPage = "tx-scan.html"
	// Favicon is also served at /favicon.ico, which browsers ask for on
	// their own.
	Favicon = "favicon.svg"
)

// Static holds the embedded files under the directory "static". Most callers
// want Files.
//
//go:embed static
var Static embed.FS

// Files returns the embedded files with "static/" stripped, so that
// "index.html" and "app.css" are at its root. Serve it under /static/ and
// the three pages at their routes (see the package comment).
func Files() fs.FS {
	sub, err := fs.Sub(Static, "static")
	if err != nil {
		// Unreachable: "static" is a valid path and embedded at build time.
		panic(err)
	}
	return sub
}
