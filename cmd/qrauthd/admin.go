package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// adminCommand is one `qrauthd admin NAME ...` command. Flows register
// theirs from their own files in init.
type adminCommand struct {
	usage string // arguments, e.g. "USER ROLE..."
	help  string
	run   func(ctx context.Context, cl *adminClient, args []string, out io.Writer) error
}

var adminCommands = map[string]adminCommand{
	"migrate": {"--from FILE.db --to postgres://…", "copy a stopped server's database file into an empty PostgreSQL database and compare them (docs/cluster.md); works on the file, not the socket", adminMigrate},
	"users":   {"[SUBCOMMAND ARGS]", "list users with their roles and methods; the subcommands below manage one account", adminUsersCommand},
	"user":    {"USER", "show one user as JSON", adminUser},
	"roles":   {"USER [ROLE...]", "set a user's roles (admin, helpdesk, secret_viewer); none clears them", adminRoles},
	"audit":   {"[USER]", "print the audit log, of one user or of all", adminAudit},
	"backup": {"[-force] FILE", "write a consistent copy of the database to FILE while serving (audited); " +
		"an existing FILE only with -force", adminBackup},
	// The flows' commands (admin_<flow>.go), listed here rather than
	// registered by init(): one table, read at a glance.
	"badge": {
		usage: "issue USER insecure|secure [-expires YYYY-MM-DD] [-out DIR] | list USER | revoke BADGE",
		help:  "issue a printable login badge (writes its PDF and PNG), list a user's badges, revoke one",
		run:   adminBadge,
	},
	"oath": {
		usage: "show|delete|unlock|secret|letter USER",
		help: "a user's authenticator app (OATH): show its state, delete it, unlock it after too many wrong codes, " +
			"view its secret (audited), or write an activation letter (PDF) into the letter directory",
		run: adminOATH,
	},
	"offline": {"USER", "list a user's offline code methods, locked or not", adminOffline},
	"offline-unlock": {"USER DEVICE METHOD",
		"unlock an offline method (OFFLINE_DEVICE or OFFLINE_PIN) locked after too many wrong codes", adminOfflineUnlock},
	"oidc": {
		usage: "clients add|list|remove ... | rotate-keys",
		help: "OpenID Connect relying sites: `clients add -id ID -name NAME -redirect URI [-redirect URI...] [-post-logout URI...] " +
			"[-public] [-scope S...] [-skip-consent] [-alg RS256|EdDSA]` (a confidential client's secret is shown once), " +
			"`clients list`, `clients remove ID`; `rotate-keys` makes new signing keys (the old verify for -oidc-key-grace)",
		run: adminOIDC,
	},
}

// adminClient calls the running server's admin API over its Unix socket.
type adminClient struct {
	http *http.Client
}

func newAdminClient(socket string) *adminClient {
	return &adminClient{http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}}
}

// do sends a request and decodes the JSON answer into out (if not nil).
// Error answers become *qrauth.Error.
func (cl *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://qrauthd"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach qrauthd on its admin socket (is it running with this -data?): %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return errorAnswer(method, path, resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// errorAnswer turns an error answer into *qrauth.Error, or names the status
// when the body is not one.
func errorAnswer(method, path string, resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e qrauth.Error
	if json.Unmarshal(data, &e) == nil && e.Message != "" {
		return &e
	}
	return fmt.Errorf("%s %s: %s", method, path, resp.Status)
}

// runAdmin runs `qrauthd admin [-socket PATH] COMMAND ARGS...`.
func runAdmin(ctx context.Context, args []string, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("qrauthd admin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	data := fs.String("data", env("DATA", DefaultDataPath), "the server's database file; the socket is next to it")
	socket := fs.String("socket", env("ADMIN_SOCKET", ""), "admin socket (default: admin.sock next to -data)")
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "Usage: qrauthd admin [-data FILE | -socket PATH] COMMAND [ARGS]\n\n"+
			"Talks to the running server over its admin socket (by default admin.sock next to -data).\n\nCommands:")
		names := make([]string, 0, len(adminCommands))
		for n := range adminCommands {
			names = append(names, n)
		}
		sort.Strings(names)
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		for _, n := range names {
			c := adminCommands[n]
			fmt.Fprintf(tw, "  %s %s\t%s\n", n, c.usage, c.help)
			if n == "users" {
				usersUsage(tw)
			}
		}
		tw.Flush()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) || (err == nil && fs.Arg(0) == "help") {
		usage(out)
		return 0
	} else if err != nil {
		fmt.Fprintf(errOut, "qrauthd admin: %v (qrauthd admin -h)\n", err)
		return 2
	}
	if fs.NArg() == 0 {
		usage(errOut)
		return 2
	}
	cmd, ok := adminCommands[fs.Arg(0)]
	if !ok {
		fmt.Fprintf(errOut, "qrauthd admin: unknown command %q (qrauthd admin -h lists them)\n", fs.Arg(0))
		return 2
	}
	if *socket == "" {
		*socket = defaultAdminSocket(*data)
	}
	if err := cmd.run(ctx, newAdminClient(*socket), fs.Args()[1:], out); err != nil {
		var e *qrauth.Error
		if errors.As(err, &e) {
			fmt.Fprintf(errOut, "qrauthd admin: %s [%s]\n", e.Message, e.Reason)
		} else {
			fmt.Fprintf(errOut, "qrauthd admin: %v\n", err)
		}
		if errors.Is(err, errUsage) {
			use := fs.Arg(0) + " " + cmd.usage
			var ue *usageError
			if errors.As(err, &ue) {
				use = ue.usage
			}
			fmt.Fprintf(errOut, "usage: qrauthd admin %s\n", use)
			return 2
		}
		return 1
	}
	return 0
}

var errUsage = errors.New("wrong arguments")

// usageError is errUsage of a subcommand, with the usage to show instead
// of the command's.
type usageError struct{ usage string }

func (e *usageError) Error() string        { return errUsage.Error() }
func (e *usageError) Is(target error) bool { return target == errUsage }

type adminUserRow struct {
	ID        qrauth.UserID  `json:"id"`
	Name      string         `json:"name"`
	Email     string         `json:"email"`
	CreatedAt time.Time      `json:"created_at"`
	Roles     []qrauth.Role  `json:"roles"`
	Devices   int            `json:"devices"`
	Methods   map[string]any `json:"methods"`
	Disabled  *struct{}      `json:"disabled"`
}

func adminUsers(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) != 0 {
		return errUsage
	}
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tE-MAIL\tROLES\tDEVICES\tMETHODS\tSTATUS")
	after := ""
	for {
		var page struct {
			Users []adminUserRow `json:"users"`
		}
		if err := cl.do(ctx, "GET", wire.PathAdminUsers+"?limit=1000&after="+after, nil, &page); err != nil {
			return err
		}
		for _, u := range page.Users {
			var roles []string
			for _, r := range u.Roles {
				roles = append(roles, string(r))
			}
			var methods []string
			for m, v := range u.Methods {
				if inUse(v) {
					methods = append(methods, m)
				}
			}
			sort.Strings(methods)
			status := "enabled"
			if u.Disabled != nil {
				status = "disabled"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", u.ID, u.Name, u.Email, strings.Join(roles, ","), u.Devices,
				strings.Join(methods, ","), status)
		}
		if len(page.Users) < 1000 {
			break
		}
		after = string(page.Users[len(page.Users)-1].ID)
	}
	return tw.Flush()
}

// inUse reports whether a method entry of /admin/api/users says the user
// has the method: true, a count above 0 (badges) or a non-empty list
// (offline methods). A count of 0 used to print as "badge".
func inUse(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case float64:
		return v > 0
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	case string:
		return v != ""
	}
	return false
}

func adminUser(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errUsage
	}
	return printJSON(ctx, cl, wire.Path(wire.PathAdminUser, args[0]), out)
}

// printJSON prints the answer to GET path, indented.
func printJSON(ctx context.Context, cl *adminClient, path string, out io.Writer) error {
	var v json.RawMessage
	if err := cl.do(ctx, "GET", path, nil, &v); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, v, "", "  "); err != nil {
		return err
	}
	fmt.Fprintln(out, buf.String())
	return nil
}

func adminRoles(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) < 1 {
		return errUsage
	}
	roles := []qrauth.Role{}
	for _, r := range args[1:] {
		roles = append(roles, qrauth.Role(r))
	}
	var v struct {
		User adminUserRow `json:"user"`
	}
	if err := cl.do(ctx, "PUT", wire.Path(wire.PathAdminUserRoles, args[0]), map[string]any{"roles": roles}, &v); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s now has roles %v\n", v.User.ID, v.User.Roles)
	return nil
}

func adminAudit(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) > 1 {
		return errUsage
	}
	q := ""
	if len(args) == 1 {
		q = "&user=" + args[0]
	}
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tEVENT\tUSER\tDEVICE\tIP\tDETAIL\tACTOR")
	var after uint64
	for {
		var page struct {
			Events []qrauth.AuditEvent `json:"events"`
		}
		if err := cl.do(ctx, "GET", fmt.Sprintf("%s?after=%d%s", wire.PathAdminAudit, after, q), nil, &page); err != nil {
			return err
		}
		for _, e := range page.Events {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Format(time.RFC3339), e.Type, e.UserID, e.DeviceID, e.IP,
				e.Detail, e.Actor)
			after = e.Seq
		}
		if len(page.Events) == 0 {
			break
		}
	}
	return tw.Flush()
}
