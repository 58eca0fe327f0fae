package wire_test

import (
	"testing"

	"github.com/qrauth/qrauth/wire"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{wire.Path(wire.PathSessions), "/api/sessions"},
		{wire.Path(wire.PathSessionByID, "s_abc"), "/api/sessions/s_abc"},
		{wire.Path(wire.PathAdminUserRoles, "u_1"), "/admin/api/users/u_1/roles"},
		{wire.Path(wire.PathAdminUser, "a/b c"), "/admin/api/users/a%2Fb%20c"},
		{wire.Path(wire.PathScan, "AAAA"), "/q/AAAA"},
		{wire.Prefix(wire.PathScan), "/q/"},
		{wire.Prefix(wire.PathTransactionScan), "/t/"},
		{wire.Prefix(wire.PathStatic), "/static/"},
		{wire.Prefix(wire.PathMe), "/api/me"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for name, f := range map[string]func(){
		"TooFew":  func() { wire.Path(wire.PathAdminUser) },
		"TooMany": func() { wire.Path(wire.PathMe, "x") },
	} {
		t.Run("Err"+name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}
