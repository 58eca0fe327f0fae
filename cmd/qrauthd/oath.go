package main

import "flag"

// oathFlags adds the flags of the oath flow to fs, into m.Config.
func (m *Main) oathFlags(fs *flag.FlagSet) {
}
