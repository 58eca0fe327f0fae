// Package wire is the single source of truth for what both ends of the
// qrauth protocol must agree on, and the Go reference of docs/protocol.md:
// the WebSocket frames and their strict decoders, the exact bytes a device
// signs (decision, join, app request, transaction), the header names, every
// API path, the discovery document, the JSON error body, and the one table
// from error codes to HTTP statuses and WebSocket close codes (both ways),
// with the reconnect rule beside it. Request and response bodies that the
// server and a Go client share are declared here once.
//
// The server, appclient, cmd/* and the tests use these declarations; none
// of them writes a path, a header name or a status of an error code as a
// literal. The package imports the root package qrauth for the Error type,
// its codes and the domain types; the root never imports wire.
package wire
