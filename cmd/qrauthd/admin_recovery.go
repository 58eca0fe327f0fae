package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/qrauth/qrauth/wire"
	qrcode "github.com/skip2/go-qrcode"
)

// adminUsersRecover runs `qrauthd admin users recover USER`: it issues a
// helpdesk link code for USER (docs/recovery.md) and prints it as a QR
// code the new phone scans, plus the code as text to type.
func adminUsersRecover(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errUsage
	}
	var v wire.LinkCodeResponse
	if err := cl.do(ctx, "POST", wire.Path(wire.PathAdminRecoveryLink, args[0]), nil, &v); err != nil {
		return err
	}
	// skip2/go-qrcode (already used for printed badges) draws the code in
	// Unicode half blocks, two modules a character, so a URL-sized code
	// fits a terminal. Its quiet zone is part of the drawing; light
	// modules are the block characters, which reads right on the usual
	// dark terminal.
	q, err := qrcode.New(v.URL, qrcode.Medium)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Link code for %s: scan this with the new phone's qrauth app,\n", v.UserID)
	fmt.Fprintf(out, "or type the code in it (qrauth-app recover CODE):\n\n%s\n", q.ToSmallString(false))
	fmt.Fprintf(out, "  %s\n\n", v.Code)
	fmt.Fprintf(out, "It works once, until %s. Using it signs out every browser of the account.\n",
		v.ExpiresAt.Local().Format(time.DateTime+" MST"))
	return nil
}
