// Package metrics owns qrauth's Prometheus metrics: one registry of its
// own (never the global one, so nothing a library registers leaks into the
// scrape), the Go and process collectors, and the counters, gauges and
// histograms of docs/monitoring.md.
//
// A *Metrics is the server's Metrics (server.Metrics) and the store's
// Observer (store.Observer); cmd/qrauthd hands it to both and serves
// Handler on the operator's -metrics-addr. This package imports neither:
// the interfaces are the consumers', and it is the only one that imports
// Prometheus.
//
// Every label value comes from a small fixed set in the code (methods,
// results, error codes and reasons, limiter names, audit types); Label
// folds anything else into "other", so no user id, phone hash, address or
// secret can become a label, and the number of series stays bounded.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/qrauth/qrauth"
)

// Namespace prefixes every metric of ours.
const Namespace = "qrauth"

// Metrics is a registry and the metrics in it. It is safe for concurrent
// use; every method is a few atomic operations and never blocks.
type Metrics struct {
	reg *prometheus.Registry

	signIns        *prometheus.CounterVec
	signUps        *prometheus.CounterVec
	refusals       *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	auditEvents    *prometheus.CounterVec
	scanToSignedIn prometheus.Histogram
	ticketExchange prometheus.Histogram
	roomsWaiting   prometheus.Gauge
	socketsOpen    *prometheus.GaugeVec
	commitSeconds  prometheus.Histogram
	commitWrites   prometheus.Histogram
}

// New returns the metrics in a new registry, with the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "signins_total",
			Help: "Sign-ins that ended, by method (the steps passed, joined with +) and result (ok, denied, refused, failed).",
		}, []string{"method", "result"}),
		signUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "signups_total",
			Help: "Sign-ups that ended, by method and result (ok, denied, refused, failed).",
		}, []string{"method", "result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "refusals_total",
			Help: "Error answers to requests and on sockets, by wire error code and reason.",
		}, []string{"code", "reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "rate_limited_total",
			Help: "Requests refused by a rate limiter, by limiter.",
		}, []string{"limiter"}),
		auditEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "audit_events_total",
			Help: "Audit events made durable, by type.",
		}, []string{"type"}),
		scanToSignedIn: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "scan_to_signed_in_seconds",
			Help: "Time from a phone's join (the scan) to the stored session of a QR sign-in, the person's decision included.",
			// A person reads the phone and taps: seconds, not milliseconds.
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 180},
		}),
		ticketExchange: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "ticket_exchange_seconds",
			Help:    "Time to answer a browser's POST of its ticket (the session's store commit included).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		roomsWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "rooms_waiting",
			Help: "Rooms open now: sign-in pages waiting for a scan or a decision.",
		}),
		socketsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "sockets_open",
			Help: "WebSockets open now, by role (browser, phone).",
		}, []string{"role"}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "store_commit_seconds",
			Help:    "Duration of one store write transaction, fsyncs included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		commitWrites: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "store_commit_writes",
			Help:    "Writes carried by one store transaction (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 … 1024; the batch cap is 1000
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.signIns, m.signUps, m.refusals, m.rateLimited, m.auditEvents,
		m.scanToSignedIn, m.ticketExchange, m.roomsWaiting, m.socketsOpen,
		m.commitSeconds, m.commitWrites,
	)
	// The usual series exist from the start at 0, so that rate() and the
	// dashboard see the first event as an increase, not as a new series.
	for _, result := range []string{"ok", "denied", "refused", "failed"} {
		m.signIns.WithLabelValues("qr", result)
		m.signUps.WithLabelValues("qr", result)
	}
	for _, role := range []string{"browser", "phone"} {
		m.socketsOpen.WithLabelValues(role)
	}
	return m
}

// Registry returns the registry, for tests that gather it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// SignIn implements server.Metrics.
func (m *Metrics) SignIn(method, result string) {
	m.signIns.WithLabelValues(Label(method), Label(result)).Inc()
}

// SignUp implements server.Metrics.
func (m *Metrics) SignUp(method, result string) {
	m.signUps.WithLabelValues(Label(method), Label(result)).Inc()
}

// Refused implements server.Metrics.
func (m *Metrics) Refused(code, reason string) {
	m.refusals.WithLabelValues(Label(code), Label(reason)).Inc()
}

// ScanToSignedIn implements server.Metrics.
func (m *Metrics) ScanToSignedIn(d time.Duration) { m.scanToSignedIn.Observe(d.Seconds()) }

// TicketExchange implements server.Metrics.
func (m *Metrics) TicketExchange(d time.Duration) { m.ticketExchange.Observe(d.Seconds()) }

// RoomsWaiting implements server.Metrics.
func (m *Metrics) RoomsWaiting(delta int) { m.roomsWaiting.Add(float64(delta)) }

// SocketsOpen implements server.Metrics.
func (m *Metrics) SocketsOpen(role string, delta int) {
	m.socketsOpen.WithLabelValues(Label(role)).Add(float64(delta))
}

// RateLimited implements server.Metrics.
func (m *Metrics) RateLimited(limiter string) { m.rateLimited.WithLabelValues(Label(limiter)).Inc() }

// Committed implements store.Observer.
func (m *Metrics) Committed(took time.Duration, writes int) {
	m.commitSeconds.Observe(took.Seconds())
	m.commitWrites.Observe(float64(writes))
}

// Appended implements store.Observer: it counts the event by type only.
func (m *Metrics) Appended(e qrauth.AuditEvent) { m.auditEvents.WithLabelValues(Label(e.Type)).Inc() }

// maxLabel bounds a label value; our longest reason is well below it.
const maxLabel = 48

// Label returns v if it looks like the fixed names the code passes (lower
// case letters, digits, "_" and "+", at most 48 bytes), else "other": a
// bug that passed something else (an id, an address) must neither leak it
// into the scrape nor grow the series without bound.
func Label(v string) string {
	if v == "" || len(v) > maxLabel {
		return "other"
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '+') {
			return "other"
		}
	}
	return v
}
