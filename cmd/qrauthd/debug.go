package main

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

// serveDebug serves pprof and a stats document on a separate, operator-only
// address (never the public one): profiles reveal internals.
func (m *Main) serveDebug(log *slog.Logger) error {
	ln, err := net.Listen("tcp", m.DebugAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/stats", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Query().Get("free") == "1":
			// Collect and hand every free page back to the OS, so resident
			// memory shows what the process needs, not the collector's
			// headroom.
			debug.FreeOSMemory()
		case r.URL.Query().Get("gc") == "1":
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"pid":         os.Getpid(),
			"goroutines":  runtime.NumGoroutine(),
			"rooms":       m.Server.Rooms(),
			"heap_inuse":  ms.HeapInuse,
			"stack_inuse": ms.StackInuse,
			"sys":         ms.Sys,
		})
	})
	m.debug = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go m.debug.Serve(ln)
	log.Info("debug server listening", slog.String("addr", ln.Addr().String()))
	return nil
}
