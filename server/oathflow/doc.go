// Package oathflow is the OATH flow: one-time passwords (RFC 4226 HOTP, RFC 6238 TOTP)
// from authenticator apps as a second factor after the QR sign-in.
//
// # Flow
//
//  1. Enrolment. A signed-in user asks for a secret (POST /api/oath/enrol):
//     the server makes one, seals it and stores it as the account's pending
//     token, and shows it as an otpauth:// QR code and in Base32. The user
//     types one current code (POST /api/oath/confirm); only then does the
//     pending token become the active one.
//  2. Sign-in. After the QR step, the flow's gate (Flow.Gate, listed by cmd/qrauthd after the badge flow) sends users
//     with an active token (policy if-enrolled) or everybody (policy
//     required) to /verify, which posts the code to /api/oath/signin. The
//     session is issued only once the code is accepted. Under "required", a
//     user without a token enrols on that page first.
//  3. Administration under /admin/api/oath/: status, delete, unlock, view
//     the secret (role secret_viewer), order an activation letter (PDF).
//
// Code generation and otpauth:// URIs come from github.com/pquerna/otp;
// the window, drift, replay detection and lock are ours (oath_otp.go) and
// the replay state is kept in the store (oath.Store, the store interface
// this flow consumes; the records and that contract live in package oath).
// The flow reaches the core only through server.Host. It is on exactly
// when cmd/qrauthd lists it (-oath, or a policy other than off); New
// requires the master key.
package oathflow
