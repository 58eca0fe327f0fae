package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/qrauth/qrauth"
)

func testSetRoles(t *testing.T, open opener) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		st := open(t)
		u, _ := mustCreateUser(t, st, "roles")
		got, err := st.SetRoles(ctx, u.ID, []qrauth.Role{qrauth.RoleHelpdesk, qrauth.RoleAdmin, qrauth.RoleAdmin},
			newEvent(qrauth.AuditRolesChanged, u.ID))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Roles) != "[admin helpdesk]" {
			t.Fatalf("roles %v", got.Roles)
		}
		again, _ := st.FindUserByID(ctx, u.ID)
		if !again.HasRole(qrauth.RoleAdmin) || again.HasRole(qrauth.RoleSecretViewer) {
			t.Fatalf("stored roles %v", again.Roles)
		}
	})
	t.Run("ErrInvalidRole", func(t *testing.T) {
		st := open(t)
		u, _ := mustCreateUser(t, st, "roles")
		ev := newEvent(qrauth.AuditRolesChanged, u.ID)
		if _, err := st.SetRoles(ctx, u.ID, []qrauth.Role{"root"}, ev); qrauth.ErrorCode(err) != qrauth.EINVALID {
			t.Fatalf("err %v", err)
		}
		if ev.Seq != 0 {
			t.Fatal("event appended for a refused change")
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		st := open(t)
		if _, err := st.SetRoles(ctx, "u_missing", nil); qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
			t.Fatalf("err %v", err)
		}
	})
}

func testListUsers(t *testing.T, open opener) {
	ctx := context.Background()
	st := open(t)
	for i := range 5 {
		mustCreateUser(t, st, fmt.Sprintf("list%d", i))
	}
	first, err := st.ListUsers(ctx, "", 3)
	if err != nil || len(first) != 3 || first[0].ID != "u_list0" {
		t.Fatalf("first page %v %v", first, err)
	}
	rest, err := st.ListUsers(ctx, first[2].ID, 0)
	if err != nil || len(rest) != 2 || rest[0].ID != "u_list3" {
		t.Fatalf("second page %v %v", rest, err)
	}
}
