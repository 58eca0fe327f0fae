// Package clustertests holds the tests that run qrauthd as a cluster: two
// real qrauthd processes on loopback ports sharing one Redis and one
// PostgreSQL (cluster_test.go). They are a package of their own, beside
// cmd/qrauthd's, so that `go test ./...` runs them in parallel with the
// browser suites rather than after them in one long package run.
package clustertests
