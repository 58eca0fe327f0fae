package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/store/storetest"
)

// TestDeleteUserLeavesNothing: after DeleteUser no row of any table, read
// as text whole, names anything of the user; the other user's rows stay.
func TestDeleteUserLeavesNothing(t *testing.T) {
	db := open(t)
	ada := storetest.FillAccount(t, db, "ada", 1)
	bob := storetest.FillAccount(t, db, "bob", 2)
	before := dump(t, db)
	for _, s := range ada {
		if !strings.Contains(before, s) {
			t.Fatalf("%q is not in the database before the delete: the test would prove nothing", s)
		}
	}
	if err := db.DeleteUser(context.Background(), "u_ada", &qrauth.AuditEvent{Time: time.Now(), Type: qrauth.AuditUserDeleted}); err != nil {
		t.Fatal(err)
	}
	after := dump(t, db)
	for _, line := range strings.Split(after, "\n") {
		for _, s := range ada {
			if strings.Contains(line, s) {
				t.Errorf("after deleting u_ada the database still holds %q: %s", s, line)
			}
		}
	}
	for _, s := range bob {
		if !strings.Contains(after, s) {
			t.Errorf("deleting u_ada took %q of u_bob with it", s)
		}
	}
	storetest.FillAccount(t, db, "ada", 1) // the same phone signs up again
}

// dump returns every row of every table of the store's schema as text.
func dump(t *testing.T, db interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}) string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		rows, err := db.Query(ctx, fmt.Sprintf("SELECT t::text FROM %q t", table))
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			fmt.Fprintf(&b, "%s %s\n", table, l)
		}
	}
	return b.String()
}
