package main

import "flag"

// badgeFlags adds the flags of the badge flow to fs, into m.Config.
func (m *Main) badgeFlags(fs *flag.FlagSet) {
}
