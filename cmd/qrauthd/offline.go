package main

import "flag"

// offlineFlags adds the flags of the offline flow to fs, into m.Config.
func (m *Main) offlineFlags(fs *flag.FlagSet) {
}
