package wire

import (
	"net/url"
	"strings"
)

// Every path of the qrauth HTTP and WebSocket API, below the origin. Each is
// written as an echo route pattern: the server registers these constants,
// and a client builds a concrete path of a pattern with parameters
// (":name") with Path. docs/protocol.md §11 lists them; a test checks that
// the server registers exactly the documented routes.
//
// The flows' paths (OATH, offline codes and approvals, badges) are here too:
// phones, browsers and the admin CLI call them.
const (
	// Pages and socket endpoints.
	PathLogin         = "/" // the sign-in page
	PathFavicon       = "/favicon.ico"
	PathAccount       = "/account"
	PathScan          = "/q/:psk" // what a sign-in QR code encodes: ORIGIN/q/PSK
	PathStatic        = "/static/*"
	PathHealth        = "/healthz"            // alive: 200 {"status":"ok"}
	PathReady         = "/readyz"             // ready: 200, or 503 with the reason
	PathDiscovery     = "/.well-known/qrauth" // the Discovery document
	PathBrowserSocket = "/ws/browser"
	PathAppSocket     = "/ws/app"

	// The browser's API (session cookie).
	PathSession        = "/api/session" // exchange a ticket for a session
	PathPendingSignIn  = "/api/signin/pending"
	PathMe             = "/api/me"
	PathLogout         = "/api/logout"
	PathSessions       = "/api/sessions"
	PathSessionByID    = "/api/sessions/:id"
	PathDevices        = "/api/devices"
	PathDeviceByID     = "/api/devices/:id"
	PathAppSessions    = "/api/app/sessions" // device-signed (AppRequest)
	PathAppSessionByID = "/api/app/sessions/:id"
	PathAppDevices     = "/api/app/devices" // device-signed: the account's phones
	PathAppCode        = "/api/app/code"    // exchange a typed user code for the QR code's URL

	// Forward auth for reverse proxies (docs/integration.md).
	PathForwardAuth       = "/api/authz/forward-auth"
	PathForwardAuthSignIn = "/authz/signin" // ?rd=URL

	// The phone web app (docs/phone-app.md).
	PathPhoneApp         = "/app"
	PathPhoneAppWorker   = "/app/sw.js"
	PathPhoneAppManifest = "/app/manifest.webmanifest"

	// Administration.
	PathAdmin          = "/admin"
	PathAdminUsers     = "/admin/api/users"
	PathAdminUser      = "/admin/api/users/:id"
	PathAdminUserRoles = "/admin/api/users/:id/roles"
	PathAdminAudit     = "/admin/api/audit"
	// PathAdminBackup streams a copy of the database file; operator only.
	PathAdminBackup = "/admin/api/backup"

	// An account's lifecycle (docs/operations-users.md): its phones,
	// disabling it, deleting it, exporting its data.
	PathAdminUserDevices = "/admin/api/users/:id/devices"
	PathAdminUserDevice  = "/admin/api/users/:id/devices/:device"
	PathAdminUserDisable = "/admin/api/users/:id/disable"
	PathAdminUserEnable  = "/admin/api/users/:id/enable"
	PathAdminUserExport  = "/admin/api/users/:id/export"

	// The OATH flow (docs/oath.md).
	PathVerify          = "/verify"
	PathOATH            = "/api/oath"
	PathOATHEnrol       = "/api/oath/enrol"
	PathOATHConfirm     = "/api/oath/confirm"
	PathOATHSignIn      = "/api/oath/signin"
	PathOATHSignInEnrol = "/api/oath/signin/enrol"
	PathAdminOATH       = "/admin/api/oath/:id"
	PathAdminOATHUnlock = "/admin/api/oath/:id/unlock"
	PathAdminOATHSecret = "/admin/api/oath/:id/secret"
	PathAdminOATHLetter = "/admin/api/oath/:id/letter"

	// The offline flow (docs/offline.md).
	PathOffline                = "/offline"
	PathApprove                = "/approve"  // the approval page; its fragment carries ID.TOKEN
	PathTransactionScan        = "/t/:token" // what a transaction QR code encodes: ORIGIN/t/TOKEN
	PathOfflineSignIn          = "/api/offline/signin"
	PathOfflineSignInVerify    = "/api/offline/signin/:id/verify"
	PathOfflineSignInCancel    = "/api/offline/signin/:id/cancel"
	PathApproveView            = "/api/approve/view"
	PathApproveVerify          = "/api/approve/verify"
	PathAppOffline             = "/api/app/offline" // device-signed: list the device's methods
	PathAppOfflineMethod       = "/api/app/offline/:method"
	PathAppApproval            = "/api/app/approvals/:token" // device-signed: fetch (GET), decide (POST)
	PathOfflineSessions        = "/api/offline/sessions"
	PathOfflineSession         = "/api/offline/sessions/:id"
	PathOfflineSessionVerify   = "/api/offline/sessions/:id/verify"
	PathOfflineSessionCancel   = "/api/offline/sessions/:id/cancel"
	PathOfflineUserMethods     = "/api/offline/users/:id/methods"
	PathOfflineUserUnlock      = "/api/offline/users/:id/unlock"
	PathApprovals              = "/api/approvals"
	PathApproval               = "/api/approvals/:id"
	PathApprovalCancel         = "/api/approvals/:id/cancel"
	PathAdminOfflineUser       = "/admin/api/offline/users/:id"
	PathAdminOfflineUserUnlock = "/admin/api/offline/users/:id/unlock"

	// The badge flow (docs/badge.md).
	PathBadge            = "/badge"
	PathBadgeStatus      = "/api/badge/status"
	PathBadgeScan        = "/api/badge/scan"
	PathBadgeFrame       = "/api/badge/frame"
	PathBadgePhone       = "/api/badge/phone"
	PathSignInPassword   = "/api/signin/password"
	PathPassword         = "/api/password"
	PathBadges           = "/api/badges"
	PathBadgeRevoke      = "/api/badges/:id/revoke"
	PathAdminBadgeUser   = "/admin/api/badge/users/:id"
	PathAdminBadgeRevoke = "/admin/api/badge/badges/:id/revoke"
)

// Path returns the concrete path of a pattern: each parameter segment
// (":name", in order) replaced by the next of params, path-escaped. It
// panics if the counts differ, which is a programming error.
func Path(pattern string, params ...string) string {
	segs := strings.Split(pattern, "/")
	n := 0
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			if n == len(params) {
				panic("wire.Path: too few parameters for " + pattern)
			}
			segs[i] = url.PathEscape(params[n])
			n++
		}
	}
	if n != len(params) {
		panic("wire.Path: too many parameters for " + pattern)
	}
	return strings.Join(segs, "/")
}

// Prefix returns the part of a pattern before its first parameter, such as
// "/q/" of PathScan: what a client matches a scanned URL's path against.
func Prefix(pattern string) string {
	if i := strings.IndexAny(pattern, ":*"); i >= 0 {
		return pattern[:i]
	}
	return pattern
}
