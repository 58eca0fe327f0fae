package server_test

import (
	"os"
	"testing"

	"github.com/qrauth/qrauth/internal/redistest"
)

// TestMain stops the Redis server the cluster tests share (redistest.Shared).
func TestMain(m *testing.M) {
	code := m.Run()
	redistest.StopShared()
	os.Exit(code)
}
