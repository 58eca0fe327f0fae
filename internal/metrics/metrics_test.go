package metrics_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/metrics"
	"github.com/qrauth/qrauth/internal/metrics/metricstest"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/store"
)

// The consumers declare the interfaces; Metrics must satisfy both.
var (
	_ server.Metrics = (*metrics.Metrics)(nil)
	_ store.Observer = (*metrics.Metrics)(nil)
)

func TestLabel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"qr", "qr"},
		{"qr+oath", "qr+oath"},
		{"ticket_wrong_browser", "ticket_wrong_browser"},
		{"", "other"},
		{"192.0.2.1", "other"},
		{"Kx3-user-id", "other"},
		{"a b", "other"},
		{strings.Repeat("a", 49), "other"},
	} {
		if got := metrics.Label(tc.in); got != tc.want {
			t.Errorf("Label(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// exercised returns metrics with every method called once, served on a
// loopback listener, and the URL of its /metrics.
func exercised(t *testing.T) string {
	t.Helper()
	m := metrics.New()
	m.SignIn("qr+oath", server.ResultOK)
	m.SignUp("qr", server.ResultOK)
	m.Refused(qrauth.EUNAUTHORIZED, "bad_signature")
	m.Refused(qrauth.EINVALID, "192.0.2.1") // a bug's value: folded
	m.ScanToSignedIn(300 * time.Millisecond)
	m.TicketExchange(2 * time.Millisecond)
	m.RoomsWaiting(2)
	m.RoomsWaiting(-1)
	m.SocketsOpen(server.RolePhone, 1)
	m.RateLimited("code_global")
	m.Committed(3*time.Millisecond, 7)
	m.Appended(qrauth.AuditEvent{Type: qrauth.AuditSignIn, UserID: "u1", IP: "192.0.2.1"})
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

func TestScrape(t *testing.T) {
	fams := metricstest.Scrape(t, exercised(t))
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"qrauth_signins_total", map[string]string{"method": "qr+oath", "result": "ok"}, 1},
		{"qrauth_signins_total", map[string]string{"method": "qr", "result": "denied"}, 0}, // present from the start
		{"qrauth_signups_total", map[string]string{"method": "qr", "result": "ok"}, 1},
		{"qrauth_refusals_total", map[string]string{"code": "unauthorized", "reason": "bad_signature"}, 1},
		{"qrauth_refusals_total", map[string]string{"code": "invalid", "reason": "other"}, 1},
		{"qrauth_rooms_waiting", nil, 1},
		{"qrauth_sockets_open", map[string]string{"role": "phone"}, 1},
		{"qrauth_sockets_open", map[string]string{"role": "browser"}, 0},
		{"qrauth_rate_limited_total", map[string]string{"limiter": "code_global"}, 1},
		{"qrauth_audit_events_total", map[string]string{"type": "signin"}, 1},
	} {
		if _, ok := fams[tc.name]; !ok {
			t.Errorf("%s missing from the scrape", tc.name)
			continue
		}
		if got := metricstest.Value(fams, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	for _, h := range []string{"qrauth_scan_to_signed_in_seconds", "qrauth_ticket_exchange_seconds",
		"qrauth_store_commit_seconds", "qrauth_store_commit_writes"} {
		if n := metricstest.SampleCount(fams, h); n != 1 {
			t.Errorf("%s has %d samples, want 1", h, n)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}
	for name, fam := range fams {
		for _, m := range fam.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), "u1") || strings.Contains(l.GetValue(), "192.0.2.1") {
					t.Errorf("%s has label %s=%q: an id or address", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// metricName matches the metric names in a PromQL expression: ours and the
// Go and process collectors'.
var metricName = regexp.MustCompile(`\b(?:qrauth|go|process)_[a-z0-9_]+\b`)

// TestDashboardMetricsExist: every metric a panel of
// docs/grafana-dashboard.json queries is in a scrape of the real registry,
// so a renamed metric cannot leave the dashboard silently empty.
func TestDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Query any }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			exprs = append(exprs, q)
		}
	}
	fams := metricstest.Scrape(t, exercised(t))
	var used []string
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			used = append(used, name)
			if !scraped(fams, name) {
				t.Errorf("the dashboard queries %s, which the registry does not export (in %s)", name, e)
			}
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d metric names in the dashboard: %v", len(used), used)
	}
	for name := range fams {
		if strings.HasPrefix(name, metrics.Namespace+"_") && !slices.ContainsFunc(used, func(u string) bool { return family(fams, u) == name }) {
			t.Errorf("%s is not on the dashboard", name)
		}
	}
}

// scraped reports whether name is a series of the scrape: a family, or a
// histogram's _bucket, _sum or _count.
func scraped(fams map[string]*dto.MetricFamily, name string) bool { return family(fams, name) != "" }

func family(fams map[string]*dto.MetricFamily, name string) string {
	if _, ok := fams[name]; ok {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if f, found := fams[base]; ok && found && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
			return base
		}
	}
	return ""
}
