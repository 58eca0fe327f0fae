// Command qrauth-app is the qrauth phone app on the command line: it holds a
// device key, scans login codes (a picture of the QR code or its URL),
// shows which browser asks, approves or denies, and lists and ends the
// account's browser sessions. It also turns on offline codes, answers
// offline challenges with no network at all, and approves transactions.
// Scripts and tests drive it like a phone.
//
// Usage:
//
//	qrauth-app init --server URL --phone +41791234567 [--name "Pixel 8"]
//	qrauth-app scan FILE.png|URL|CODE [--approve|--deny] [--name N --email E]
//	qrauth-app sessions
//	qrauth-app revoke ID
//	qrauth-app activate offline-device|offline-pin [--pin PIN]
//	qrauth-app deactivate offline-device|offline-pin
//	qrauth-app offline FILE.png|DATA [--pin PIN]
//	qrauth-app version
//
// The device state is kept in $QRAUTH_APP_STATE, or else in
// qrauth/device.json below the user's configuration directory; --state
// overrides both. Offline keys live beside it (device.offline.json).
// Exit codes: 0 success, 1 error or refusal, 2 usage error, 3 denied.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/wire"
)

// Exit codes.
const (
	exitOK     = 0
	exitError  = 1 // an error or a refusal
	exitUsage  = 2 // bad command line
	exitDenied = 3 // the request was denied
)

// Timeouts of the network steps. A person's answer at the prompt is not
// bounded here: the server's room lifetime bounds it.
const (
	defaultTimeout = 30 * time.Second
	// formTimeout bounds waiting for the browser's sign-up form.
	formTimeout = 10 * time.Minute
)

// stateEnv names the environment variable with the state file path.
const stateEnv = "QRAUTH_APP_STATE"

const usageText = `Usage:
  qrauth-app init --server URL --phone NUMBER [--name NAME] [--force]
        create this device's key for a qrauth server
  qrauth-app scan FILE|URL|CODE [--approve|--deny] [--name NAME --email EMAIL]
        scan a login code (a PNG, JPEG or GIF picture, or the code's URL),
        or type the code shown under it, such as 7K3M-QX9D
  qrauth-app sessions
        list the browsers signed in to the account
  qrauth-app revoke ID
        end a browser session
  qrauth-app activate offline-device|offline-pin [--pin PIN]
        turn on offline codes for this phone (needs the network, once)
  qrauth-app deactivate offline-device|offline-pin
        turn offline codes off
  qrauth-app offline FILE|DATA [--pin PIN]
        answer an offline code (a picture of it, or its text) with a
        one-time number; works with no network at all
  qrauth-app recover CODE|URL
        link this new phone to an account whose phone was lost, with a
        recovery code or the helpdesk's link code (or its QR code's URL);
        every browser signed in to the account is signed out
  qrauth-app version
        print the version and source revision

A scanned transaction code (…/t/…) shows the transaction's text and asks
to approve it or deny it, with --approve or --deny for scripts.

Every command takes --state FILE (default $QRAUTH_APP_STATE or
the user config directory's qrauth/device.json).
Exit codes: 0 success, 1 error or refusal, 2 usage error, 3 denied.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program behind main, with its inputs and outputs passed
// in so that tests can drive it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		return c.usage("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "init":
		return c.init(ctx, rest)
	case "scan":
		return c.scan(ctx, rest)
	case "sessions":
		return c.sessions(ctx, rest)
	case "revoke":
		return c.revoke(ctx, rest)
	case "activate":
		return c.activate(ctx, rest)
	case "deactivate":
		return c.deactivate(ctx, rest)
	case "offline":
		return c.offline(ctx, rest)
	case "recover":
		return c.recover(ctx, rest)
	case "version":
		return c.version(rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		return c.usage(fmt.Sprintf("unknown command %q", cmd))
	}
}

// cli holds the streams of one run.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	state          string // the state file in use, once loaded
}

// usage reports a usage error.
func (c *cli) usage(msg string) int {
	fmt.Fprintf(c.stderr, "qrauth-app: %s\n\n%s", msg, usageText)
	return exitUsage
}

// fail prints err as one line, the message and the reason in brackets,
// and returns the exit code for errors.
func (c *cli) fail(err error) int {
	line := errorLine(err)
	if qrauth.ErrorReason(err) == "https_required" && c.state != "" {
		// appclient says what to change; only we know where it is kept.
		line += fmt.Sprintf(" (The address is in the \"server\" and \"origin\" fields of %s.)", c.state)
	}
	fmt.Fprintf(c.stderr, "qrauth-app: %s\n", line)
	return exitError
}

// errorLine renders an error as one line. Messages may come from the
// server, so they are cleaned of control characters like any server text.
func errorLine(err error) string {
	var e *qrauth.Error
	if errors.As(err, &e) {
		return clean(e.Message) + " [" + clean(e.Reason) + "]"
	}
	return clean(err.Error())
}

// flags returns a flag set for a command with the common --state flag.
func (c *cli) flags(name string) (*flag.FlagSet, *string) {
	set := flag.NewFlagSet("qrauth-app "+name, flag.ContinueOnError)
	set.SetOutput(c.stderr)
	set.Usage = func() {
		fmt.Fprintf(c.stderr, "Flags of qrauth-app %s:\n", name)
		set.PrintDefaults()
	}
	state := set.String("state", "", "device state `file` (default $"+stateEnv+" or the user config dir's qrauth/device.json)")
	return set, state
}

// parse parses flags that may come before or after the positional
// arguments, which it returns. The standard flag package stops at the
// first positional argument; "scan FILE --approve" should work too.
func (c *cli) parse(set *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if err := set.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false // the flag package printed why
		}
		args = set.Args()
		if len(args) == 0 {
			return pos, 0, true
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// statePath returns the state file: the flag, the environment, or the
// default below the user's configuration directory.
func statePath(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p := os.Getenv(stateEnv); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", qrauth.Errorf(qrauth.EINVALID, "no_state_path", "No place for the device state: set --state or $%s.", stateEnv)
	}
	return filepath.Join(dir, "qrauth", "device.json"), nil
}

func (c *cli) load(stateFlag string) (*appclient.Device, error) {
	path, err := statePath(stateFlag)
	if err != nil {
		return nil, err
	}
	c.state = path
	return appclient.Load(path)
}

func (c *cli) init(ctx context.Context, args []string) int {
	set, stateFlag := c.flags("init")
	server := set.String("server", "", "qrauth server `URL`, such as https://login.example.com (required)")
	phone := set.String("phone", "", "phone `number` in international form, such as +41791234567 (required)")
	name := set.String("name", "", "device `name` shown in the account (default \"Phone\")")
	force := set.Bool("force", false, "replace an existing device state (its key is lost)")
	pos, code, ok := c.parse(set, args)
	switch {
	case !ok:
		return code
	case len(pos) > 0:
		return c.usage("init takes no arguments, only flags")
	case *server == "" || *phone == "":
		return c.usage("init needs --server and --phone")
	}
	path, err := statePath(*stateFlag)
	if err != nil {
		return c.fail(err)
	}
	if _, err := os.Stat(path); err == nil && !*force {
		return c.fail(qrauth.Errorf(qrauth.ECONFLICT, "state_exists",
			"A device already exists at %s; use --force to replace it (its key, and so its account access, is lost).", path))
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c.fail(err)
	}

	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	d, err := appclient.Init(ctx, appclient.InitOptions{Server: *server, Phone: *phone, Name: *name})
	if err != nil {
		return c.fail(err)
	}
	if err := d.Save(path); err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.stdout, "Device created for %s.\n", d.Origin)
	fmt.Fprintf(c.stdout, "Device id:   %s\n", d.ID())
	fmt.Fprintf(c.stdout, "PhoneIdHash: %s\n", d.PhoneIDHash)
	fmt.Fprintf(c.stdout, "State:       %s\n", path)
	fmt.Fprintln(c.stdout, "Scan a login code to sign up; the key never leaves this device.")
	return exitOK
}

func (c *cli) scan(ctx context.Context, args []string) int {
	set, stateFlag := c.flags("scan")
	approve := set.Bool("approve", false, "approve without asking")
	deny := set.Bool("deny", false, "deny without asking")
	name := set.String("name", "", "at sign-up: your `name` for the new account")
	email := set.String("email", "", "at sign-up: your e-mail `address` for the new account")
	timeout := set.Duration("timeout", defaultTimeout, "how long to wait for the server at each step")
	pos, code, ok := c.parse(set, args)
	switch {
	case !ok:
		return code
	case len(pos) != 1:
		return c.usage("scan needs exactly one picture file, URL or typed code")
	case *approve && *deny:
		return c.usage("give --approve or --deny, not both")
	case *timeout <= 0:
		return c.usage("--timeout must be positive")
	}
	var profile *qrauth.Profile
	if *name != "" || *email != "" {
		profile = &qrauth.Profile{Name: *name, Email: *email}
		if err := profile.Normalize(); err != nil {
			return c.fail(err)
		}
	}
	d, err := c.load(*stateFlag)
	if err != nil {
		return c.fail(err)
	}
	var text string
	if isTypedCode(pos[0]) {
		// The code stands for the URL of the QR code above it; from there
		// on everything is as after a scan.
		stepCtx, cancel := context.WithTimeout(ctx, *timeout)
		text, err = d.ExchangeCode(stepCtx, pos[0])
		cancel()
	} else {
		text, err = readCode(pos[0])
	}
	if err != nil {
		return c.fail(err)
	}
	if appclient.IsTransactionURL(text) {
		return c.transaction(ctx, d, text, *approve, *deny, *timeout)
	}

	stepCtx, cancel := context.WithTimeout(ctx, *timeout)
	scan, err := d.Scan(stepCtx, text, appclient.ScanOptions{})
	cancel()
	if err != nil {
		return c.fail(err)
	}
	defer scan.Close()
	ch := scan.Challenge
	c.showChallenge(ch)

	yes := *approve
	if !*approve && !*deny {
		if yes, err = c.ask(ctx, "Approve? [y/N] "); err != nil {
			return c.fail(err)
		}
	}
	stepCtx, cancel = context.WithTimeout(ctx, *timeout)
	defer cancel()
	if !yes {
		done, err := scan.Deny(stepCtx)
		if err != nil {
			return c.fail(err)
		}
		return c.outcome(done)
	}
	opts := appclient.ApproveOptions{}
	if profile != nil {
		if ch.Mode == wire.ModeSignUp {
			opts.Profile = profile
		} else {
			fmt.Fprintln(c.stderr, "qrauth-app: --name and --email are for sign-up only; not sent.")
		}
	}
	done, err := scan.Approve(stepCtx, opts)
	if err != nil {
		return c.fail(err)
	}
	if done.Type == wire.MsgNeedsForm {
		fmt.Fprintln(c.stdout, "Fill in the sign-up form in the browser (every field is optional)...")
		formCtx, cancel := context.WithTimeout(ctx, formTimeout)
		defer cancel()
		if done, err = scan.Wait(formCtx); err != nil {
			return c.fail(err)
		}
	}
	return c.outcome(done)
}

// isTypedCode reports whether arg is a code typed from the login page
// (7K3M-QX9D) and not a picture file that happens to exist under that name.
func isTypedCode(arg string) bool {
	if !appclient.IsUserCode(arg) {
		return false
	}
	_, err := os.Stat(arg)
	return errors.Is(err, fs.ErrNotExist)
}

// readCode returns the text of the code: decoded from the picture if arg
// names an existing file, else arg itself, taken as the code's URL.
func readCode(arg string) (string, error) {
	f, err := os.Open(arg)
	if errors.Is(err, fs.ErrNotExist) {
		if !strings.Contains(arg, "://") {
			return "", qrauth.Errorf(qrauth.EINVALID, "no_such_file", "There is no file %s, and it is not a URL either.", arg)
		}
		return arg, nil
	} else if err != nil {
		return "", qrauth.Errorf(qrauth.EINVALID, "unreadable_image", "Cannot open %s.", arg)
	}
	defer f.Close()
	return appclient.DecodeQRImage(f)
}

// modeTitles head the challenge for each mode.
var modeTitles = map[string]string{
	wire.ModeLogin:  "Sign-in request",
	wire.ModeSignUp: "Sign-up request: create an account for this phone",
	wire.ModeLink:   "Link request: add this phone to an account",
}

// showChallenge prints who asks, so the person can tell whether it is
// their own browser. Every value comes from the server or the browser (a
// user agent is chosen by whoever runs it), so all are cleaned of control
// characters that could redraw the terminal.
func (c *cli) showChallenge(ch *wire.ServerMessage) {
	w := c.stdout
	fmt.Fprintln(w, modeTitles[ch.Mode])
	if ch.Site != nil && ch.Site.Name != "" {
		// The relying site, as the login page names it: where the
		// browser goes once signed in.
		fmt.Fprintf(w, "  Sign in to %s\n", clean(ch.Site.Name))
	}
	fmt.Fprintf(w, "  Server:   %s\n", clean(ch.Origin))
	fmt.Fprintf(w, "  Mode:     %s\n", ch.Mode)
	if ch.Account != nil && ch.Account.Name != "" {
		fmt.Fprintf(w, "  Account:  %s\n", clean(ch.Account.Name))
	}
	if b := ch.Context; b != nil {
		fmt.Fprintf(w, "  Site:     %s\n", orUnknown(b.Origin))
		fmt.Fprintf(w, "  Browser:  %s on %s\n", orUnknown(b.Browser), orUnknown(b.OS))
		place := ""
		if b.Place != "" {
			place = " (" + clean(b.Place) + ")"
		}
		fmt.Fprintf(w, "  IP:       %s%s\n", orUnknown(b.IP), place)
		if !b.Time.IsZero() {
			fmt.Fprintf(w, "  Time:     %s\n", b.Time.Local().Format("2006-01-02 15:04:05 MST"))
		}
	}
	if ch.KnownAddress != nil {
		if *ch.KnownAddress {
			fmt.Fprintln(w, "  History:  this account has signed in from this address before")
		} else {
			fmt.Fprintln(w, "  History:  FIRST sign-in from this address")
		}
	}
	if p := ch.Proximity; p != nil {
		if p.SameNetwork {
			fmt.Fprintln(w, "  Network:  same network as this phone")
		} else {
			fmt.Fprintf(w, "  Network:  another network than this phone (%s)\n", orUnknown(p.AppIP))
		}
		if p.Warning != "" {
			fmt.Fprintf(w, "\n  !!! WARNING: %s\n  !!! Approve only if you started this sign-in yourself, on a browser in front of you.\n", clean(p.Warning))
		}
	}
	fmt.Fprintln(w)
}

// ask prints a yes/no question and reads the answer; anything but y or
// yes, including end of input, is no.
func (c *cli) ask(ctx context.Context, question string) (bool, error) {
	fmt.Fprint(c.stdout, question)
	answer := make(chan string, 1)
	go func() { // a blocked terminal read must not outlive a Ctrl-C
		line, _ := bufio.NewReader(c.stdin).ReadString('\n')
		answer <- line
	}()
	select {
	case line := <-answer:
		if !isTerminal(c.stdin) { // echo the piped answer, so a log reads like a session
			fmt.Fprintln(c.stdout, strings.TrimSpace(line))
		}
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			return true, nil
		}
		return false, nil
	case <-ctx.Done():
		fmt.Fprintln(c.stdout)
		return false, qrauth.Errorf(qrauth.EINTERNAL, "canceled", "Cancelled; nothing was sent.")
	}
}

// isTerminal reports whether r is a terminal, which echoes what is typed.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// outcome prints the server's done message and returns the exit code.
func (c *cli) outcome(done *wire.ServerMessage) int {
	device := ""
	if done.Device != nil {
		device = fmt.Sprintf(" as %q", clean(done.Device.Name))
	}
	switch done.Result {
	case "signed_in":
		fmt.Fprintln(c.stdout, "Approved: the browser is signed in.")
	case "signed_up":
		fmt.Fprintf(c.stdout, "Approved: account created and the browser is signed in (this phone registered%s).\n", device)
	case "linked":
		fmt.Fprintf(c.stdout, "Approved: this phone is linked to the account%s.\n", device)
	case "denied":
		fmt.Fprintln(c.stdout, "Denied: the browser was not signed in.")
		return exitDenied
	default:
		return c.fail(qrauth.Errorf(qrauth.EINTERNAL, "unknown_result", "The server answered with an unknown result %q.", done.Result))
	}
	return exitOK
}

func (c *cli) sessions(ctx context.Context, args []string) int {
	set, stateFlag := c.flags("sessions")
	pos, code, ok := c.parse(set, args)
	switch {
	case !ok:
		return code
	case len(pos) > 0:
		return c.usage("sessions takes no arguments")
	}
	d, err := c.load(*stateFlag)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	list, err := d.Sessions(ctx)
	if err != nil {
		return c.fail(err)
	}
	if len(list) == 0 {
		fmt.Fprintln(c.stdout, "No browser is signed in.")
		return exitOK
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tIP\tBROWSER\tOS\tCREATED\tLAST SEEN")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", clean(string(s.ID)), orUnknown(s.IP), orUnknown(s.Browser),
			orUnknown(s.OS), formatTime(s.CreatedAt), formatTime(s.LastSeenAt))
	}
	tw.Flush()
	return exitOK
}

func (c *cli) revoke(ctx context.Context, args []string) int {
	set, stateFlag := c.flags("revoke")
	pos, code, ok := c.parse(set, args)
	switch {
	case !ok:
		return code
	case len(pos) != 1:
		return c.usage("revoke needs exactly one session id (see qrauth-app sessions)")
	}
	d, err := c.load(*stateFlag)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	if err := d.RevokeSession(ctx, qrauth.SessionID(pos[0])); err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.stdout, "Session %s ended.\n", pos[0])
	return exitOK
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// maxShown is the longest server-provided value printed, in runes.
const maxShown = 200

// clean makes text from the network safe to print on a terminal: control
// characters (escape sequences could rewrite what the person reads) and
// bidirectional overrides become "?", and the text is cut at maxShown runes.
func clean(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxShown {
			b.WriteString("…")
			break
		}
		n++
		switch {
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r):
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func orUnknown(s string) string {
	if s = clean(strings.TrimSpace(s)); s == "" {
		return "unknown"
	}
	return s
}
