package storetest

import "testing"

// testOffline checks the qrauth.OfflineStore methods.
func testOffline(t *testing.T, open opener) {
}
