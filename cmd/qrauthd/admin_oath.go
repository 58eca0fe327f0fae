package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qrauth/qrauth/wire"
)

// adminOATHAccount mirrors the server's admin view of an OATH account.
type adminOATHAccount struct {
	Active      bool      `json:"active"`
	Pending     bool      `json:"pending"`
	TokenID     string    `json:"token_id"`
	Kind        string    `json:"kind"`
	Algorithm   string    `json:"algorithm"`
	Digits      int       `json:"digits"`
	Period      int       `json:"period"`
	Source      string    `json:"source"`
	CreatedAt   time.Time `json:"created_at"`
	ActivatedAt time.Time `json:"activated_at"`
	LastUsedAt  time.Time `json:"last_used_at"`
	Locked      bool      `json:"locked"`
	LockedAt    time.Time `json:"locked_at"`
	Failures    int       `json:"failures"`
	Offset      int64     `json:"offset"`
	NextCounter uint64    `json:"next_counter"`
}

func adminOATH(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) != 2 || args[1] == "" {
		return errUsage
	}
	path := wire.Path(wire.PathAdminOATH, args[1])
	var v struct {
		Account *adminOATHAccount `json:"account"`
	}
	switch args[0] {
	case "show":
		if err := cl.do(ctx, "GET", path, nil, &v); err != nil {
			return err
		}
		printOATHAccount(out, v.Account)
	case "delete":
		if err := cl.do(ctx, "DELETE", path, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(out, "deleted the authenticator of %s\n", args[1])
	case "unlock":
		if err := cl.do(ctx, "POST", wire.Path(wire.PathAdminOATHUnlock, args[1]), nil, &v); err != nil {
			return err
		}
		fmt.Fprintf(out, "unlocked the authenticator of %s\n", args[1])
	case "secret":
		var k struct {
			URI     string `json:"uri"`
			Secret  string `json:"secret"`
			Hex     string `json:"hex"`
			TokenID string `json:"token_id"`
		}
		if err := cl.do(ctx, "POST", wire.Path(wire.PathAdminOATHSecret, args[1]), nil, &k); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
		fmt.Fprintf(tw, "token\t%s\nbase32\t%s\nhex\t%s\nuri\t%s\n", k.TokenID, k.Secret, k.Hex, k.URI)
		tw.Flush()
		fmt.Fprintln(out, "(this view is recorded in the audit log as oath_secret_viewed)")
	case "letter":
		var l struct {
			File    string `json:"file"`
			TokenID string `json:"token_id"`
			Reused  bool   `json:"reused"`
		}
		if err := cl.do(ctx, "POST", wire.Path(wire.PathAdminOATHLetter, args[1]), nil, &l); err != nil {
			return err
		}
		what := "a new token"
		if l.Reused {
			what = "the existing token"
		}
		fmt.Fprintf(out, "wrote %s (%s %s)\n", l.File, what, l.TokenID)
	default:
		return errUsage
	}
	return nil
}

func printOATHAccount(out io.Writer, a *adminOATHAccount) {
	if a == nil {
		fmt.Fprintln(out, "no authenticator")
		return
	}
	when := func(t time.Time) string {
		if t.IsZero() || t.Year() < 1971 {
			return "never"
		}
		return t.Format(time.RFC3339)
	}
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	state := []string{}
	switch {
	case a.Active && a.Locked:
		state = append(state, "locked since "+when(a.LockedAt))
	case a.Active:
		state = append(state, "active")
	default:
		state = append(state, "not active")
	}
	if a.Pending {
		state = append(state, "enrolment pending")
	}
	fmt.Fprintf(tw, "state\t%s\n", strings.Join(state, ", "))
	if a.Active {
		fmt.Fprintf(tw, "token\t%s (%s, %s, %d digits", a.TokenID, a.Kind, a.Algorithm, a.Digits)
		if a.Period > 0 {
			fmt.Fprintf(tw, ", %ds", a.Period)
		}
		fmt.Fprintf(tw, ", from %s)\n", a.Source)
		fmt.Fprintf(tw, "activated\t%s\nlast used\t%s\nwrong codes\t%d\n", when(a.ActivatedAt), when(a.LastUsedAt), a.Failures)
		if a.Kind == "totp" {
			fmt.Fprintf(tw, "clock drift\t%d time steps\n", a.Offset)
		} else {
			fmt.Fprintf(tw, "next counter\t%d\n", a.NextCounter)
		}
	}
	tw.Flush()
}
