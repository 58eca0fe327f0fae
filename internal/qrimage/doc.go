// Package qrimage owns QR codes as images, both ways, for every part of
// qrauth that draws or reads one:
//
//   - Encode, PNG and DataURL: the fast encoder of the codes the server
//     shows (login rooms, offline challenges, transactions, OATH
//     enrolment), rsc.io/qr with a UTF-8 ECI segment for non-ASCII text
//     and a hand-written 1-bit PNG. (Printed letters and badges use
//     skip2/go-qrcode for their larger vector-like images.)
//   - Read and Decode: the one decoder, gozxing with every fallback, used
//     by the app client for scanned screenshots and by the server for
//     badge camera frames.
package qrimage
