// Package appclient is the phone side of qrauth as a Go package: it owns the
// device key and PhoneIdHash, decodes QR codes, joins a room over the app
// WebSocket, approves or denies with a signed decision, and lists and ends
// the account's browser sessions with device-signed HTTP requests. The
// command qrauth-app is a thin shell around it.
//
// Every error it returns is a *qrauth.Error: Message is a sentence for the
// person, Reason a stable name (such as "foreign_origin"), and the wrapped
// Err the cause, for logs.
//
// # Flow
//
// Once per phone and server, Init fetches the server's discovery document
// (GET SERVER/.well-known/qrauth) for its origin and phone salt, hashes the
// phone number into the PhoneIdHash and creates an Ed25519 device key; Save
// keeps them in a file of mode 0600. The private key never leaves the phone.
//
// For each login:
//
//  1. The person scans the browser's QR code; DecodeQRImage reads its text
//     from a picture. ParseQRURL (called by Device.Scan) accepts only
//     ORIGIN/q/PSK for the device's own origin and refuses a code shown by
//     another site (EINVALID "foreign_origin"), the QRLJacking defence.
//  2. Device.Scan opens the app socket, sends {"type":"join"} with the PSK,
//     the device id, the PhoneIdHash, the public key and a signature of
//     qrauth.Join (the proof of possession the server checks before it
//     reveals anything about the account), and waits for the challenge: mode
//     (login, signup or link), room, nonce, origin and the browser's context
//     (IP, place, browser, time, whether the address is known, proximity).
//     A challenge for any other origin is refused.
//  3. The app shows Scan.Challenge to the person, who approves or denies.
//     Scan.Approve and Scan.Deny sign a qrauth.Decision over origin, room,
//     nonce, mode, device, phone and decision, send it (with the public key
//     at signup and link) and return the server's done message.
//  4. At signup without a profile the server answers profile_needed: the
//     browser fills in the form (Scan.Wait) or the phone does
//     (Scan.SendProfile). Then done, and the server closes the socket.
//
// Afterwards Device.Sessions lists the account's signed-in browsers and
// Device.RevokeSession ends one.
package appclient
