// Package offline holds the domain of the offline flow (docs/offline.md,
// served by server/offlineflow): offline methods and their credentials,
// offline code sessions and attempts, online transaction approvals, the
// verification data format and the one-time code, and Store, the store
// contract the flow consumes (store/ implements it on bbolt,
// store/storetest.RunOffline checks any implementation). Standard library
// and the root package only, so that the phone side (appclient, wire) can
// use the formats without the server.
//
// A phone that has no network at the moment of sign-in reads a one-time
// code from a challenge QR code, as with Encap offline authentication and
// Airlock 2FA offline QR. Each device activates offline methods while
// online; each method has its own random key, which the server keeps
// encrypted at rest and the phone keeps in its own store (under a key
// derived from a PIN for OFFLINE_PIN). Beside it lives online transaction
// approval: the phone, online, shows a transaction text and signs approve
// or deny over it.
package offline
