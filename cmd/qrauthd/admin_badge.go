package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/internal/atomicfile"
	"github.com/qrauth/qrauth/wire"
)

type adminBadgeRow struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at"`
	RevokedBy string    `json:"revoked_by"`
}

func adminBadge(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "issue":
		return adminBadgeIssue(ctx, cl, args[1:], out)
	case "list":
		if len(args) != 2 {
			return errUsage
		}
		var v struct {
			User   struct{ Name string } `json:"user"`
			Badges []adminBadgeRow       `json:"badges"`
		}
		if err := cl.do(ctx, "GET", wire.Path(wire.PathAdminBadgeUser, args[1]), nil, &v); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "BADGE\tKIND\tSTATUS\tISSUED\tBY\tEXPIRES\tREVOKED")
		for _, b := range v.Badges {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Kind, b.Status, day(b.CreatedAt), b.CreatedBy,
				day(b.ExpiresAt), day(b.RevokedAt)+byWhom(b.RevokedBy))
		}
		return tw.Flush()
	case "revoke":
		if len(args) != 2 {
			return errUsage
		}
		var v struct {
			Badge adminBadgeRow `json:"badge"`
		}
		if err := cl.do(ctx, "POST", wire.Path(wire.PathAdminBadgeRevoke, args[1]), nil, &v); err != nil {
			return err
		}
		fmt.Fprintf(out, "badge %s revoked; it no longer signs anyone in\n", v.Badge.ID)
		return nil
	}
	return errUsage
}

func adminBadgeIssue(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) < 2 {
		return errUsage
	}
	user, kind := args[0], args[1]
	fs := flag.NewFlagSet("badge issue", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	expires := fs.String("expires", "", "last day of validity (secure badges), YYYY-MM-DD")
	dir := fs.String("out", ".", "directory for badge-ID.pdf and badge-ID.png")
	if err := fs.Parse(args[2:]); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	if kind != string(badge.Insecure) && kind != string(badge.Secure) {
		return fmt.Errorf("badge kind %q: want insecure or secure: %w", kind, errUsage)
	}
	if fi, err := os.Stat(*dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("-out %s: not a directory", *dir)
	}
	var v struct {
		Badge adminBadgeRow `json:"badge"`
		PNG   []byte        `json:"png"`
		PDF   []byte        `json:"pdf"`
	}
	if err := cl.do(ctx, "POST", wire.Path(wire.PathAdminBadgeUser, user), map[string]string{"kind": kind, "expires": *expires}, &v); err != nil {
		return err
	}
	if v.Badge.ID == "" || len(v.PDF) == 0 || len(v.PNG) == 0 {
		return errors.New("the server answered without the badge's files")
	}
	// The files are a credential (a secure badge signs in on its own):
	// readable by the operator only.
	base := filepath.Join(*dir, "badge-"+v.Badge.ID)
	for ext, data := range map[string][]byte{".pdf": v.PDF, ".png": v.PNG} {
		if err := atomicfile.Write(base+ext, data, 0o600); err != nil {
			return fmt.Errorf("badge %s was issued, but writing its file failed (revoke it and issue again): %w", v.Badge.ID, err)
		}
	}
	fmt.Fprintf(out, "%s badge %s issued for %s\n  %s.pdf\n  %s.png\n", v.Badge.Kind, v.Badge.ID, user, base, base)
	if kind == string(badge.Insecure) {
		fmt.Fprintln(out, "  an insecure badge only says who someone is: a second factor always follows it")
	}
	return nil
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateOnly)
}

func byWhom(s string) string {
	if s == "" {
		return ""
	}
	return " by " + s
}
