// Package qrauth holds the domain of the qrauth login service: users,
// devices, sessions, the audit log and the error type shared by every layer.
// The wire protocol spoken between the browser, the server and the phone app
// (frames, signed bytes, paths, the status and close-code table) is package
// wire, which imports this one.
//
// It imports only the standard library. Adapters live in subpackages that
// import this one (and wire) and never each other: store (bbolt), server (echo and
// gorilla/websocket), appclient (the phone side), webclient (embedded pages);
// cmd wires them together.
//
// # Flow
//
// A browser opens a room and shows a QR code of ORIGIN/q/PSK. The app scans it
// and joins the room with the PSK, its DeviceID and its PhoneIDHash. The
// server answers the app with a challenge (a nonce and the browser's context).
// The app signs a wire.Decision with its Ed25519 device key; the server verifies
// the signature, binds the room to the user and hands the browser a one-time
// ticket, which the browser exchanges for a session cookie. See
// docs/protocol.md for every message.
package qrauth
