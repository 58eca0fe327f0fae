package main

import (
	"fmt"

	"github.com/qrauth/qrauth/internal/buildinfo"
)

// version is `qrauth-app version`: the same line as `qrauthd version`
// (internal/buildinfo), so that a bug report names both ends' builds alike.
func (c *cli) version(args []string) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			fmt.Fprintln(c.stdout, "Usage: qrauth-app version")
			return exitOK
		}
		return c.usage("version takes no arguments")
	}
	fmt.Fprintln(c.stdout, buildinfo.String("qrauth-app"))
	return exitOK
}
