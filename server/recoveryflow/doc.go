// Package recoveryflow is the account recovery flow (docs/recovery.md):
// a person whose only phone is lost links a new phone with one of their
// recovery codes, or with a link code the helpdesk issues.
//
// # Flow
//
// The account page generates a set of ten recovery codes (shown once; the
// store keeps only HMACs). The new phone sends a code in a request signed
// by its own new key (wire.Recover, POST wire.PathAppRecover); the flow
// checks the signature, then the code, and the store burns the code, links
// the phone and ends every browser session of the account in one
// transaction. The helpdesk (/admin, or `qrauthd admin users recover`)
// issues link codes that work the same way for a few minutes. Wrong codes
// are rate-limited per address and, when the phone names an account by its
// number, counted against that account until its recovery codes lock.
package recoveryflow
