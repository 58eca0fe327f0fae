package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/metrics"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/store"
)

// The consumers' interfaces that *metrics.Metrics is wired to below.
var (
	_ server.Metrics = (*metrics.Metrics)(nil)
	_ store.Observer = (*metrics.Metrics)(nil)
)

// serveMetrics serves Prometheus' /metrics and the health checks on the
// separate, operator-only -metrics-addr: the metrics show the load and
// the failure reasons of the service, which the public need not see, and a
// load balancer may poll /readyz there while the public listener drains.
func (m *Main) serveMetrics(log *slog.Logger, mx *metrics.Metrics) error {
	ln, err := net.Listen("tcp", m.MetricsAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", mx.Handler())
	health := m.Server.HealthHandler()
	mux.Handle("GET /healthz", health)
	mux.Handle("GET /readyz", health)
	m.metricsLn = ln
	m.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go m.metrics.Serve(ln)
	log.Info("metrics server listening", slog.String("addr", ln.Addr().String()))
	return nil
}

// auditLog writes every audit event at info, once it is durable: the
// store reports each in one place (store.Observer.Appended) whichever
// flow wrote it, so the log and the audit bucket list the same events. An
// event holds no secret (qrauth.AuditEvent's contract): no PSK, ticket,
// token, code or cookie reaches the log through it. next, when set, is
// told of everything as well (the metrics).
type auditLog struct {
	log  *slog.Logger
	next store.Observer
}

func (a auditLog) Committed(took time.Duration, writes int) {
	if a.next != nil {
		a.next.Committed(took, writes)
	}
}

func (a auditLog) Appended(e qrauth.AuditEvent) {
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("type", e.Type), slog.Uint64("seq", e.Seq))
	for _, f := range []struct{ k, v string }{
		{"user", string(e.UserID)}, {"device", string(e.DeviceID)}, {"session", string(e.SessionID)},
		{"ip", e.IP}, {"detail", e.Detail},
	} {
		if f.v != "" {
			attrs = append(attrs, slog.String(f.k, f.v))
		}
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "audit", attrs...)
	if a.next != nil {
		a.next.Appended(e)
	}
}
