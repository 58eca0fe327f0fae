// Package offlineflow is the offline flow beside the core: offline QR
// one-time codes and online transaction approval (docs/offline.md). It
// implements server.Flow, reaches the core only through server.Host, and
// consumes the store through offline.Store.
//
// # Flow
//
// It has four kinds of caller:
//
//   - the phone, over device-signed requests (Host.AuthenticateDevice):
//     activates and deactivates its offline methods and decides online
//     transactions (offline_app.go);
//   - a relying site, with an API token or an administrator's session:
//     begins, verifies, cancels and reads offline code sessions, asks for
//     online transaction approvals, unlocks methods (offline_api.go);
//   - a browser on the "sign in with a code" page, bound to its bind
//     cookie, and a browser on the transaction approval page, holding the
//     page token the relying site gave it (offline_page.go);
//   - an administrator or helpdesk on the admin page or the operator's
//     socket: lists and unlocks methods.
package offlineflow
