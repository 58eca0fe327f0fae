// Package testutil holds test helpers shared by the tests of several
// packages: a _test.go file cannot be imported from another directory, so
// helpers that more than one package's tests need live here, once. Only
// tests import it.
package testutil
