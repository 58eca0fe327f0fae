// Command readyd is the harness's own test program: it serves /readyz on
// -addr, 503 for -delay and 200 after, says so on stderr, exits with -exit
// at once when that is not -1, and exits 0 on SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	delay := flag.Duration("delay", 0, "not ready for this long")
	exit := flag.Int("exit", -1, "exit at once with this status")
	flag.Parse()
	if *exit >= 0 {
		fmt.Fprintln(os.Stderr, "readyd: exiting as told")
		os.Exit(*exit)
	}
	start := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if time.Since(start) < *delay {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", *addr, os.Getenv("READYD_NAME"))
	})
	srv := &http.Server{Addr: *addr, Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		fmt.Fprintln(os.Stderr, "readyd: stopping")
		srv.Shutdown(context.Background())
	}()
	fmt.Fprintln(os.Stderr, "readyd: listening on", *addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "readyd:", err)
		os.Exit(1)
	}
}
