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

func testDeleteDevice(t *testing.T, open opener) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		st := open(t)
		u, d := mustCreateUser(t, st, "gone")
		ev := newEvent(qrauth.AuditDeviceRemoved, u.ID)
		if err := st.DeleteDevice(ctx, d.ID, ev); err != nil {
			t.Fatal(err)
		}
		if ev.Seq == 0 {
			t.Fatal("event not appended")
		}
		if _, err := st.FindDeviceByID(ctx, d.ID); qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
			t.Fatalf("device still found: %v", err)
		}
		if list, _ := st.FindDevicesByUser(ctx, u.ID); len(list) != 0 {
			t.Fatalf("device still listed: %v", list)
		}
		// The number still names the account.
		if got, err := st.FindUserByPhoneIDHash(ctx, d.PhoneIDHash); err != nil || got.ID != u.ID {
			t.Fatalf("phone index: %v %v", got, err)
		}
		// And a new phone with that number can be linked.
		d2 := newDevice(u.ID, "gone", t0)
		d2.ID = "d_gone2"
		if err := st.CreateDevice(ctx, d2); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		st := open(t)
		ev := newEvent(qrauth.AuditDeviceRemoved, "u_x")
		if err := st.DeleteDevice(ctx, "d_missing", ev); qrauth.ErrorCode(err) != qrauth.ENOTFOUND || ev.Seq != 0 {
			t.Fatalf("err %v seq %d", err, ev.Seq)
		}
	})
}
