package main

import (
	"log/slog"
	"syscall"

	"golang.org/x/time/rate"
)

func rateLimit(r float64) rate.Limit { return rate.Limit(r) }

// raiseOpenFileLimit lifts the soft limit on open files to the hard limit:
// every waiting browser holds a socket, and the default soft limit (often
// 1024) would cap the rooms far below what the machine can hold.
func raiseOpenFileLimit(log *slog.Logger) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		log.Warn("cannot read the open-file limit", slog.Any("err", err))
		return
	}
	if l.Cur < l.Max {
		old := l.Cur
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			log.Warn("cannot raise the open-file limit", slog.Uint64("soft", old), slog.Uint64("hard", l.Max), slog.Any("err", err))
			return
		}
	}
	log.Info("open-file limit", slog.Uint64("soft", l.Cur), slog.Uint64("hard", l.Max))
}
