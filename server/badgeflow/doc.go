// Package badgeflow is the badge flow beside the core: printed QR badges
// shown to the webcam (docs/badge.md). A badge is either the first step of a sign-in (it
// identifies the holder) or a method (it authenticates someone an earlier
// step identified), as Config.Policy says. Passwords live here too:
// they are the second factor after an insecure badge and the credential
// that secure badges are sealed under.

// # Flow
//
// The flow implements server.Flow and reaches the core only through
// server.Host; it consumes the store through badge.Store.
//
//  1. The browser's /badge page sends webcam frames (or a decoded payload)
//     to /api/badge/frame or /api/badge/scan; the payload is checked against
//     the deployment's keys, the badge record and, for a secure badge, the
//     holder's current password.
//  2. Under the first-step policy the badge starts a sign-in: a secure badge
//     proves who the holder is; an insecure badge only names them
//     (SignIn.PassIdentifying), and the flow's gate then asks for a second
//     factor as a fallback step, giving way to a later flow's (an OATH
//     code): a password (/api/signin/password) or the phone
//     (/api/badge/phone, a QR ticket of the badge holder's phone).
//  3. Under the method policy, the gate asks a user who holds a usable
//     secure badge to show it after another first step.
//  4. Users and the helpdesk issue, list and revoke badges and set
//     passwords under /api/badges, /api/password and /admin/api/badge/.
package badgeflow
