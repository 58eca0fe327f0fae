package clustertests

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qrauth/qrauth/internal/clustertest"
	"github.com/qrauth/qrauth/internal/pgtest"
	"github.com/qrauth/qrauth/internal/redistest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	redistest.StopShared()
	clustertest.Cleanup()
	os.Exit(code)
}

// offlineTestToken is the relying site's API token the instances are
// given (-offline-api-token-file), as cmd/qrauthd's offline tests use.
const offlineTestToken = "qrauthd-test-relying-site-token-0123456789"

// mustKeyFile writes a master key made by the binary's own genkey, which
// every instance of a cluster shares.
func mustKeyFile(t *testing.T, bin string) string {
	t.Helper()
	key, err := exec.Command(bin, "genkey").Output()
	if err != nil {
		t.Fatalf("%s genkey: %v", bin, err)
	}
	path := filepath.Join(t.TempDir(), "qrauth.key")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
