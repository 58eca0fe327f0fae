package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qrauth/qrauth/wire"
)

// usersCommands are the subcommands of `qrauthd admin users NAME ...`; no
// NAME lists the users. One entry per subcommand: a file of its own adds
// its own here (as `recover` does).
var usersCommands = map[string]adminCommand{
	"phones":       {"USER", "list a user's phones (devices)", adminUserPhones},
	"remove-phone": {"USER DEVICE", "remove a phone: it signs nothing in, and the sessions it approved end", adminRemovePhone},
	"disable": {"USER [-reason TEXT]", "disable an account: every sign-in is refused (account_disabled) and its sessions end",
		adminDisableUser},
	"enable": {"USER", "enable a disabled account again", adminEnableUser},
	"delete": {"USER [-yes]", "delete an account and everything of it (asks to confirm unless -yes); the audit log keeps an " +
		"anonymous record", adminDeleteUser},
	"export": {"USER", "print everything held about an account as JSON (an access request); no secrets, no hashes",
		adminExportUser},
	"recover": {"USER", "issue a helpdesk link code (QR and text) for a new phone", adminUsersRecover}, // admin_recovery.go
}

// adminUsersCommand runs `qrauthd admin users [NAME ARGS...]`.
func adminUsersCommand(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) == 0 {
		return adminUsers(ctx, cl, args, out)
	}
	sub, ok := usersCommands[args[0]]
	if !ok {
		return fmt.Errorf("unknown users command %q: %w", args[0], errUsage)
	}
	if err := sub.run(ctx, cl, args[1:], out); errors.Is(err, errUsage) {
		return &usageError{usage: "users " + args[0] + " " + sub.usage}
	} else if err != nil {
		return err
	}
	return nil
}

// usersUsage is the usage of `users` in the command list: one line per
// subcommand.
func usersUsage(w io.Writer) {
	names := make([]string, 0, len(usersCommands))
	for n := range usersCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := usersCommands[n]
		fmt.Fprintf(w, "  users %s %s\t%s\n", n, c.usage, c.help)
	}
}

func adminUserPhones(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errUsage
	}
	var v struct {
		Devices []struct {
			ID         string    `json:"id"`
			Name       string    `json:"name"`
			CreatedAt  time.Time `json:"created_at"`
			LastSeenAt time.Time `json:"last_seen_at"`
		} `json:"devices"`
	}
	if err := cl.do(ctx, "GET", wire.Path(wire.PathAdminUserDevices, args[0]), nil, &v); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tNAME\tADDED\tLAST SEEN")
	for _, d := range v.Devices {
		seen := "never"
		if !d.LastSeenAt.IsZero() {
			seen = d.LastSeenAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.ID, d.Name, d.CreatedAt.Format(time.RFC3339), seen)
	}
	return tw.Flush()
}

func adminRemovePhone(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) != 2 {
		return errUsage
	}
	var v struct {
		Ended int `json:"ended_sessions"`
	}
	if err := cl.do(ctx, "DELETE", wire.Path(wire.PathAdminUserDevice, args[0], args[1]), nil, &v); err != nil {
		return err
	}
	fmt.Fprintf(out, "removed phone %s of %s; %d session(s) it approved ended\n", args[1], args[0], v.Ended)
	return nil
}

// userAndFlags parses "USER [flags]" or "[flags] USER".
func userAndFlags(fs *flag.FlagSet, args []string) (string, error) {
	fs.SetOutput(io.Discard)
	var user string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		user, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", fmt.Errorf("%v: %w", err, errUsage)
	}
	if user == "" && fs.NArg() == 1 {
		user = fs.Arg(0)
	} else if fs.NArg() != 0 {
		return "", errUsage
	}
	if user == "" {
		return "", errUsage
	}
	return user, nil
}

func adminDisableUser(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("disable", flag.ContinueOnError)
	reason := fs.String("reason", "", "why, for the audit log and the admin page")
	user, err := userAndFlags(fs, args)
	if err != nil {
		return err
	}
	var v struct {
		Ended int `json:"ended_sessions"`
	}
	if err := cl.do(ctx, "POST", wire.Path(wire.PathAdminUserDisable, user), map[string]string{"reason": *reason}, &v); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s is disabled; %d session(s) ended\n", user, v.Ended)
	return nil
}

func adminEnableUser(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errUsage
	}
	if err := cl.do(ctx, "POST", wire.Path(wire.PathAdminUserEnable, args[0]), map[string]string{}, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s is enabled\n", args[0])
	return nil
}

type stdinKey struct{}

// withStdin makes the confirmations of admin commands read r instead of
// the process's standard input (for tests).
func withStdin(ctx context.Context, r io.Reader) context.Context {
	return context.WithValue(ctx, stdinKey{}, r)
}

func stdin(ctx context.Context) io.Reader {
	if r, ok := ctx.Value(stdinKey{}).(io.Reader); ok {
		return r
	}
	return os.Stdin
}

var errNotConfirmed = errors.New("not confirmed: nothing was deleted (type the user id, or pass -yes)")

func adminDeleteUser(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	user, err := userAndFlags(fs, args)
	if err != nil {
		return err
	}
	if !*yes {
		// Shown first so that a mistyped id fails before the question
		// and the operator sees whose account goes.
		var v struct {
			User adminUserRow `json:"user"`
		}
		if err := cl.do(ctx, "GET", wire.Path(wire.PathAdminUser, user), nil, &v); err != nil {
			return err
		}
		fmt.Fprintf(out, "Delete %s (%s, %d phone(s)) and everything of it? This cannot be undone.\n"+
			"Type the user id to confirm: ", v.User.ID, v.User.Name, v.User.Devices)
		line, err := bufio.NewReader(stdin(ctx)).ReadString('\n')
		if strings.TrimSpace(line) != user || (err != nil && !errors.Is(err, io.EOF)) {
			fmt.Fprintln(out)
			return errNotConfirmed
		}
	}
	if err := cl.do(ctx, "DELETE", wire.Path(wire.PathAdminUser, user), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s is deleted\n", user)
	return nil
}

func adminExportUser(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errUsage
	}
	return printJSON(ctx, cl, wire.Path(wire.PathAdminUserExport, args[0]), out)
}
