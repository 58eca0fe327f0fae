// Package server is the qrauth HTTP and WebSocket server: the echo routes,
// the hub of login rooms, the ticket exchange, sessions, the device-signed
// app API, rate limits and graceful shutdown.
//
// # Flow
//
//  1. GET / serves the login page and sets the bind cookie.
//  2. The page opens /ws/browser; the hub creates a room and sends a QR code
//     of ORIGIN/q/PSK, replaced every PSKRotation until RoomTTL ends.
//  3. The app opens /ws/app and joins with the PSK; the PSK is consumed and
//     the app gets a challenge; the browser is told "scanned".
//  4. The app sends a signed decision. For a known device the hub verifies
//     it and hands the browser a ticket; for an unknown phone (sign-up) it
//     registers the key, waits for the profile, creates the account and
//     hands out the ticket; in a link room it adds the device to the account.
//  5. The browser posts the ticket with its bind cookie to /api/session and
//     receives the session cookie.
//
// Rooms, PSKs and tickets live in memory; users, devices, sessions and the
// audit log in the qrauth.Store.
package server
