package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/offline"
)

// methodArg accepts offline-device, offline-pin and the API names.
func methodArg(s string) (offline.Method, error) {
	return offline.ParseMethod(strings.ReplaceAll(s, "-", "_"))
}

// keysPath returns the offline keys file: --keys, or beside the state.
func keysPath(stateFlag, keysFlag string) (string, error) {
	if keysFlag != "" {
		return keysFlag, nil
	}
	state, err := statePath(stateFlag)
	if err != nil {
		return "", err
	}
	return appclient.OfflineKeysPath(state), nil
}

func (c *cli) activate(ctx context.Context, args []string) int {
	set, stateFlag := c.flags("activate")
	pin := set.String("pin", "", "the new offline `PIN` (4 to 12 digits) for offline-pin; omit it to be asked")
	keysFlag := set.String("keys", "", "offline keys `file` (default: beside the device state)")
	pos, code, ok := c.parse(set, args)
	switch {
	case !ok:
		return code
	case len(pos) != 1:
		return c.usage("activate needs one method: offline-device or offline-pin")
	}
	m, err := methodArg(pos[0])
	if err != nil {
		return c.fail(err)
	}
	if m == offline.PIN && *pin == "" {
		if *pin, err = c.readPIN(ctx, "New offline PIN (4 to 12 digits): "); err != nil {
			return c.fail(err)
		}
	}
	if err := appclient.CheckPIN(*pin); m == offline.PIN && err != nil {
		return c.fail(err)
	}
	d, err := c.load(*stateFlag)
	if err != nil {
		return c.fail(err)
	}
	path, err := keysPath(*stateFlag, *keysFlag)
	if err != nil {
		return c.fail(err)
	}
	keys, err := appclient.LoadOfflineKeys(path)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	k, err := d.ActivateOffline(ctx, m, appclient.ActivateOptions{PIN: *pin})
	if err != nil {
		return c.fail(err)
	}
	keys.Put(*k)
	if err := keys.Save(path); err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.stdout, "%s is on for this phone at %s.\n", m, d.Origin)
	if m == offline.PIN {
		fmt.Fprintln(c.stdout, "Codes need the PIN you just set. It stays on this phone; a wrong PIN gives wrong codes, and a few wrong codes lock the method.")
	}
	fmt.Fprintf(c.stdout, "Keys:  %s\n", path)
	fmt.Fprintln(c.stdout, "From now on `qrauth-app offline CODE` answers offline codes, also with no network.")
	return exitOK
}

func (c *cli) deactivate(ctx context.Context, args []string) int {
	set, stateFlag := c.flags("deactivate")
	keysFlag := set.String("keys", "", "offline keys `file` (default: beside the device state)")
	pos, code, ok := c.parse(set, args)
	switch {
	case !ok:
		return code
	case len(pos) != 1:
		return c.usage("deactivate needs one method: offline-device or offline-pin")
	}
	m, err := methodArg(pos[0])
	if err != nil {
		return c.fail(err)
	}
	d, err := c.load(*stateFlag)
	if err != nil {
		return c.fail(err)
	}
	path, err := keysPath(*stateFlag, *keysFlag)
	if err != nil {
		return c.fail(err)
	}
	keys, err := appclient.LoadOfflineKeys(path)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	if err := d.DeactivateOffline(ctx, m); err != nil && qrauth.ErrorCode(err) != qrauth.ENOTFOUND {
		return c.fail(err)
	}
	if keys.Remove(d.ID(), m) {
		if err := keys.Save(path); err != nil {
			return c.fail(err)
		}
	}
	fmt.Fprintf(c.stdout, "%s is off for this phone.\n", m)
	return exitOK
}

// offline answers an offline challenge. It reads only the offline keys
// file: no device state, no discovery, no network, so it works in a
// basement or in flight mode.
func (c *cli) offline(ctx context.Context, args []string) int {
	set, stateFlag := c.flags("offline")
	pin := set.String("pin", "", "the offline `PIN`, for codes that need one; omit it to be asked")
	keysFlag := set.String("keys", "", "offline keys `file` (default: beside the device state)")
	pos, code, ok := c.parse(set, args)
	switch {
	case !ok:
		return code
	case len(pos) != 1:
		return c.usage("offline needs exactly one picture file or the code's text")
	}
	path, err := keysPath(*stateFlag, *keysFlag)
	if err != nil {
		return c.fail(err)
	}
	keys, err := appclient.LoadOfflineKeys(path)
	if err != nil {
		return c.fail(err)
	}
	if len(keys.Keys) == 0 {
		return c.fail(qrauth.Errorf(qrauth.ENOTFOUND, "no_offline_key",
			"Offline codes are not turned on for this phone: run `qrauth-app activate offline-device` (or offline-pin) while online."))
	}
	text, err := readOfflineCode(pos[0])
	if err != nil {
		return c.fail(err)
	}
	ch, err := appclient.StartOffline(text, keys)
	if err != nil {
		return c.fail(err)
	}
	w := c.stdout
	fmt.Fprintln(w, "Offline code request")
	fmt.Fprintf(w, "  Method:   %s\n", ch.Method)
	if ch.Context == "" {
		fmt.Fprintln(w, "  Details:  (none)")
	} else {
		for i, line := range strings.Split(ch.Context, "\n") {
			label := "  Details:  "
			if i > 0 {
				label = "            "
			}
			fmt.Fprintf(w, "%s%s\n", label, cleanFull(line))
		}
	}
	fmt.Fprintln(w, "  Give the number below only if these details are what you are doing right now.")
	fmt.Fprintln(w)
	if ch.NeedsPIN && *pin == "" {
		if *pin, err = c.readPIN(ctx, "Offline PIN: "); err != nil {
			return c.fail(err)
		}
	}
	otp, err := ch.Code(*pin)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(w, "Code: %s\n", otp)
	return exitOK
}

// readOfflineCode returns the challenge's text: decoded from the picture
// if arg names an existing file, else arg itself.
func readOfflineCode(arg string) (string, error) {
	f, err := os.Open(arg)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
		return arg, nil
	} else if err != nil {
		if len(arg) >= offline.VDataHeaderLen && arg[0] == offline.VDataVersion {
			return arg, nil // text that happens to look like an unreadable path
		}
		return "", qrauth.Errorf(qrauth.EINVALID, "unreadable_image", "Cannot open %s.", arg)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return arg, nil
	}
	return appclient.DecodeQRImage(f)
}

// readPIN asks for a PIN on the terminal. The PIN is typed in clear: this
// is a test and scripting tool; a phone app masks it.
func (c *cli) readPIN(ctx context.Context, prompt string) (string, error) {
	fmt.Fprint(c.stdout, prompt)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(c.stdin).ReadString('\n')
		answer <- line
	}()
	select {
	case line := <-answer:
		if !isTerminal(c.stdin) {
			fmt.Fprintln(c.stdout)
		}
		return strings.TrimSpace(line), nil
	case <-ctx.Done():
		fmt.Fprintln(c.stdout)
		return "", qrauth.Errorf(qrauth.EINTERNAL, "canceled", "Cancelled.")
	}
}

// transaction shows a scanned online transaction and sends the person's
// signed decision.
func (c *cli) transaction(ctx context.Context, d *appclient.Device, code string, approve, deny bool, timeout time.Duration) int {
	stepCtx, cancel := context.WithTimeout(ctx, timeout)
	tx, err := d.FetchTransaction(stepCtx, code)
	cancel()
	if err != nil {
		return c.fail(err)
	}
	w := c.stdout
	fmt.Fprintln(w, "Transaction approval request")
	fmt.Fprintf(w, "  Server:   %s\n", clean(tx.Info.Origin))
	for i, line := range strings.Split(tx.Info.Text, "\n") {
		label := "  Details:  "
		if i > 0 {
			label = "            "
		}
		fmt.Fprintf(w, "%s%s\n", label, cleanFull(line))
	}
	fmt.Fprintln(w, "  Approve only if these details are exactly what you are doing right now.")
	fmt.Fprintln(w)
	yes := approve
	if !approve && !deny {
		if yes, err = c.ask(ctx, "Approve? [y/N] "); err != nil {
			return c.fail(err)
		}
	}
	stepCtx, cancel = context.WithTimeout(ctx, timeout)
	defer cancel()
	if !yes {
		if _, err := tx.Deny(stepCtx); err != nil {
			return c.fail(err)
		}
		fmt.Fprintln(w, "Denied: the transaction was not approved.")
		return exitDenied
	}
	if _, err := tx.Approve(stepCtx); err != nil {
		return c.fail(err)
	}
	fmt.Fprintln(w, "Approved: your signature over these details was sent.")
	return exitOK
}

// cleanFull is clean without the length cut: the text a person approves
// is shown whole (the server bounds its length), with control and
// bidirectional characters made visible as "?".
func cleanFull(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			b.WriteByte('?')
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}
