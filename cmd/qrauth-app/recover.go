package main

import (
	"context"
	"fmt"
)

// recover links this (new) phone to an account with a recovery code or a
// helpdesk link code (docs/recovery.md). The device must have been
// created with init first; its key is what the server registers.
func (c *cli) recover(ctx context.Context, args []string) int {
	set, stateFlag := c.flags("recover")
	pos, code, ok := c.parse(set, args)
	switch {
	case !ok:
		return code
	case len(pos) != 1:
		return c.usage("recover needs exactly one recovery code (ABCD-EFGH-JKMN-PQRS) or the URL of a helpdesk's code")
	}
	d, err := c.load(*stateFlag)
	if err != nil {
		return c.fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	r, err := d.Recover(ctx, pos[0])
	if err != nil {
		return c.fail(err)
	}
	name := clean(r.Account.Name)
	if name == "" {
		name = string(r.UserID)
	}
	fmt.Fprintf(c.stdout, "This phone is now linked to the account of %s as %q.\n", name, clean(r.Device.Name))
	fmt.Fprintf(c.stdout, "%d browser sessions were signed out. Sign in again by scanning a login code.\n", r.SessionsEnded)
	if r.Kind == "recovery_code" {
		fmt.Fprintf(c.stdout, "%d recovery codes are left; make a new set on the account page if that is few.\n", r.Remaining)
	}
	return exitOK
}
