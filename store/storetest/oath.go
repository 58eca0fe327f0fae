package storetest

import "testing"

// testOATH checks the qrauth.OATHStore methods.
func testOATH(t *testing.T, open opener) {
}
