package store_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/store/storetest"
	bolt "go.etcd.io/bbolt"
)

// walk returns every key and value of every bucket of the file at path,
// as "bucket key value" lines.
func walk(t *testing.T, path string) []string {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var out []string
	err = b.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			return bk.ForEach(func(k, v []byte) error {
				out = append(out, string(name)+" "+string(k)+" "+string(v))
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDeleteUserLeavesNothing: after DeleteUser no bucket of the file
// holds a key or value that names the user or anything of theirs, in any
// flow, while another user's records are all still there; the file's
// indexes agree (Check) and the number can sign up again.
func TestDeleteUserLeavesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qrauth.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ada := storetest.FillAccount(t, db, "ada", 1)
	bob := storetest.FillAccount(t, db, "bob", 2)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before := strings.Join(walk(t, path), "\n")
	for _, s := range ada {
		if !strings.Contains(before, s) {
			t.Fatalf("%q is not in the file before the delete: the test would prove nothing", s)
		}
	}
	if db, err = store.Open(path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteUser(t.Context(), "u_ada", &qrauth.AuditEvent{Time: time.Now(), Type: qrauth.AuditUserDeleted,
		Detail: "by operator"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	lines := walk(t, path)
	for _, line := range lines {
		for _, s := range ada {
			if strings.Contains(line, s) {
				t.Errorf("after deleting u_ada the file still holds %q: %q", s, line)
			}
		}
	}
	after := strings.Join(lines, "\n")
	for _, s := range bob {
		if !strings.Contains(after, s) {
			t.Errorf("deleting u_ada took %q of u_bob with it", s)
		}
	}
	db = mustOpenPath(t, path)
	storetest.FillAccount(t, db, "ada", 1)
}

// TestDisableUserEndsOIDC: disabling an account ends, with its sessions,
// what relying sites hold through them (tokens, codes, the sessions'
// sign-in records) and keeps its consents for when it is enabled again;
// another account's are untouched.
func TestDisableUserEndsOIDC(t *testing.T) {
	db := MustOpenDB(t)
	storetest.FillAccount(t, db, "ada", 1)
	storetest.FillAccount(t, db, "bob", 2)
	ctx := t.Context()
	if _, n, err := db.DisableUser(ctx, "u_ada", qrauth.Disabled{At: time.Now(), By: "operator"}); err != nil || n != 1 {
		t.Fatalf("DisableUser: %d sessions, %v", n, err)
	}
	gone := func(what string, err error) {
		t.Helper()
		if qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
			t.Errorf("%s after disable: %v, want not found", what, err)
		}
	}
	_, err := db.FindOIDCToken(ctx, "at_ada")
	gone("access token", err)
	_, err = db.FindOIDCRefreshToken(ctx, oidc.Hash("refresh-ada"))
	gone("refresh token", err)
	_, err = db.FindOIDCAuthRequest(ctx, "r_ada")
	gone("authorization request", err)
	_, err = db.FindOIDCSessionInfo(ctx, "s_ada")
	gone("session info", err)
	if _, err := db.FindOIDCConsent(ctx, "u_ada", "wiki"); err != nil {
		t.Errorf("consent after disable: %v", err)
	}
	for _, id := range []string{"at_bob", "rt_bob"} {
		if _, err := db.FindOIDCToken(ctx, id); err != nil {
			t.Errorf("bob's %s: %v", id, err)
		}
	}
	if _, err := db.FindOIDCSessionInfo(ctx, "s_bob"); err != nil {
		t.Errorf("bob's session info: %v", err)
	}
}
