package storetest

import "testing"

// testBadge checks the qrauth.BadgeStore methods.
func testBadge(t *testing.T, open opener) {
}
