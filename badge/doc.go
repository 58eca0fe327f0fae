// Package badge holds the domain of printed login badges and passwords:
// the badge record and its kinds, the payload printed in a badge's QR code
// and its strict parser, the password credential that secure badges are
// sealed under and the password policy, the audit event types of the
// flow, and Store, the store interface the flow consumes.
//
// It only parses and describes; the keys that tag and seal badges
// (internal/keys) and the routes, gate and pages of the flow
// (server/badgeflow) live elsewhere. See docs/badge.md for the flows and
// the policy.
package badge
