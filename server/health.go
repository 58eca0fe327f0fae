package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/qrauth/qrauth/wire"
)

// readyTimeout bounds each check of a readiness probe (the store read, the
// shared state's ping): one that takes longer is as good as not answering.
const readyTimeout = 2 * time.Second

// Pinger is a store that can say whether it answers reads (store.DB does).
// A store that is not one counts as answering.
type Pinger interface {
	Ping(ctx context.Context) error
}

// ReadyBody is the answer of /readyz: Status "ok", or "unavailable" with
// the Reason ("shutting_down", "store_unavailable", "shared_unavailable").
type ReadyBody struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// aliveBody is the answer of /healthz: the process serves requests.
var aliveBody = ReadyBody{Status: "ok"}

// readiness is /readyz: 200 when the store answers a read, the shared
// state (Config.Shared, a cluster's Redis) answers a ping, and Shutdown
// has not begun; 503 with the reason otherwise. An instance that cannot
// reach Redis can sign no one in, so the load balancer is to send people
// to another.
func (s *Server) readiness(ctx context.Context) (int, ReadyBody) {
	if s.draining.Load() {
		return http.StatusServiceUnavailable, ReadyBody{Status: "unavailable", Reason: "shutting_down"}
	}
	if p, ok := s.store.(Pinger); ok {
		ctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			s.log.Warn("readiness: store does not answer", slog.Any("err", err))
			return http.StatusServiceUnavailable, ReadyBody{Status: "unavailable", Reason: "store_unavailable"}
		}
	}
	if sh := s.cfg.Shared; sh != nil {
		ctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		if err := sh.Ping(ctx); err != nil {
			s.log.Warn("readiness: shared state does not answer", slog.Any("err", err))
			return http.StatusServiceUnavailable, ReadyBody{Status: "unavailable", Reason: "shared_unavailable"}
		}
	}
	return http.StatusOK, ReadyBody{Status: "ok"}
}

// HealthHandler serves /healthz and /readyz as the public listener does,
// for another listener: the operator's metrics address, which stays up
// while Shutdown drains the public one.
func (s *Server) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, status int, body ReadyBody) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	mux.HandleFunc("GET "+wire.PathHealth, func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusOK, aliveBody)
	})
	mux.HandleFunc("GET "+wire.PathReady, func(w http.ResponseWriter, r *http.Request) {
		status, body := s.readiness(r.Context())
		write(w, status, body)
	})
	return mux
}
