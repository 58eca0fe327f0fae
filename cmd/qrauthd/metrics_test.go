package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/internal/metrics/metricstest"
	"github.com/qrauth/qrauth/internal/testutil"
	"github.com/qrauth/qrauth/wire"
)

// qrSignIn signs in through the protocol, as a person with a browser and a
// phone: a browser socket with its bind cookie, the real appclient scanning
// and approving (with profile on a phone not yet registered), then the
// browser's POST of its ticket. It returns the new session's cookie and
// the socket's ticket, which the caller checks the log for, and the user.
func qrSignIn(t *testing.T, origin string, dev *appclient.Device, profile *qrauth.Profile) (cookie, ticket string, uid qrauth.UserID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bind := issuedBind(t, origin)
	h := http.Header{"Origin": {origin}, "Cookie": {"qrauth_bind=" + bind}}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(origin, "http")+wire.PathBrowserSocket, h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	var qr wire.ServerMessage
	if err := ws.ReadJSON(&qr); err != nil {
		t.Fatal(err)
	}
	scan, err := dev.Scan(ctx, qr.URL, appclient.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer scan.Close()
	done, err := scan.Approve(ctx, appclient.ApproveOptions{Profile: profile})
	if err != nil {
		t.Fatal(err)
	}
	uid = done.UserID
	for {
		var msg wire.ServerMessage
		if err := ws.ReadJSON(&msg); err != nil {
			t.Fatalf("waiting for the ticket: %v", err)
		}
		if msg.Type == wire.MsgApproved {
			ticket = msg.Ticket
			break
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, origin+wire.PathSession, strings.NewReader(`{"ticket":"`+ticket+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	req.Header.Set("Cookie", "qrauth_bind="+bind)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", wire.PathSession, resp.Status)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "qrauth_session" {
			cookie = c.Value
		}
	}
	if cookie == "" || ticket == "" {
		t.Fatalf("no session cookie (%q) or ticket (%q)", cookie, ticket)
	}
	return cookie, ticket, uid
}

// TestMetricsAfterSignIn drives a real sign-up and a real sign-in, then
// scrapes the real metrics listener as Prometheus would, and reads the
// operator's log.
func TestMetricsAfterSignIn(t *testing.T) {
	logs := &testutil.LogBuffer{}
	m := mustRunMainLog(t, logs, "-metrics-addr", "127.0.0.1:0", "-log-format", "json")
	origin := m.Server.Origin()
	metricsURL := "http://" + m.metricsLn.Addr().String()

	before := metricstest.Scrape(t, metricsURL+"/metrics")
	if got := metricstest.Value(before, "qrauth_signins_total", map[string]string{"result": "ok"}); got != 0 {
		t.Fatalf("sign-ins before any = %v", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 555 01 01"})
	if err != nil {
		t.Fatal(err)
	}
	upCookie, upTicket, uid := qrSignIn(t, origin, dev, &qrauth.Profile{Name: "Metrics Tester"})
	inCookie, inTicket, _ := qrSignIn(t, origin, dev, nil)
	// A refusal: a ticket used twice.
	if resp, err := http.Post(origin+wire.PathSession, "application/json", strings.NewReader(`{"ticket":"`+inTicket+`"}`)); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	fams := metricstest.Scrape(t, metricsURL+"/metrics")
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		// The sign-up's session counts as a sign-in too, as its audit event does.
		{"qrauth_signins_total", map[string]string{"method": "qr", "result": "ok"}, 2},
		{"qrauth_signups_total", map[string]string{"method": "qr", "result": "ok"}, 1},
		{"qrauth_audit_events_total", map[string]string{"type": qrauth.AuditSignUp}, 1},
		{"qrauth_audit_events_total", map[string]string{"type": qrauth.AuditSignIn}, 2},
	} {
		if got := metricstest.Value(fams, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if got := metricstest.Value(fams, "qrauth_refusals_total", map[string]string{"code": qrauth.EUNAUTHORIZED}); got < 1 {
		t.Errorf("refusals after a reused ticket = %v, want at least 1", got)
	}
	for _, h := range []string{"qrauth_scan_to_signed_in_seconds", "qrauth_ticket_exchange_seconds", "qrauth_store_commit_seconds"} {
		if n := metricstest.SampleCount(fams, h); n < 2 {
			t.Errorf("%s has %d samples, want at least 2", h, n)
		}
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go collector in the scrape")
	}
	// Nothing that names a person or a secret is a label value.
	secrets := []string{string(uid), string(dev.ID()), upCookie, inCookie, upTicket, inTicket, "127.0.0.1"}
	for name, fam := range fams {
		for _, mt := range fam.Metric {
			for _, l := range mt.Label {
				for _, s := range secrets {
					if strings.Contains(l.GetValue(), s) {
						t.Errorf("%s has label %s=%q, which names %q", name, l.GetName(), l.GetValue(), s)
					}
				}
			}
		}
	}

	// The operator's log: one audit line per event at info, with the user,
	// without secrets; request lines only at debug.
	var signIns int
	for _, line := range strings.Split(logs.String(), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "request" {
			t.Errorf("request line at info: %s", line)
		}
		if rec["msg"] == "audit" && rec["type"] == qrauth.AuditSignIn {
			signIns++
			if rec["level"] != "INFO" || rec["user"] != string(uid) || rec["session"] == nil || rec["detail"] != "methods qr" {
				t.Errorf("audit line %s: want INFO, the user, the session and its methods", line)
			}
		}
		for _, s := range []string{upCookie, inCookie, upTicket, inTicket} {
			if strings.Contains(line, s) {
				t.Errorf("log line holds a secret: %s", line)
			}
		}
	}
	if signIns != 2 {
		t.Errorf("%d audit lines of sign-ins, want 2; log:\n%s", signIns, logs.String())
	}

	// The operator's listener answers the health checks too.
	for _, p := range []string{wire.PathHealth, wire.PathReady} {
		resp, err := http.Get(metricsURL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s on the metrics listener: %s", p, resp.Status)
		}
	}
}

// TestNoMetricsByDefault: without -metrics-addr nothing listens for them.
func TestNoMetricsByDefault(t *testing.T) {
	m := MustRunMain(t)
	if m.metricsLn != nil || m.metrics != nil {
		t.Fatal("a metrics listener without -metrics-addr")
	}
}

// TestMetricsAddrInUse: a metrics address that cannot be had stops the
// start with a clear error, and the database is released for the next try.
func TestMetricsAddrInUse(t *testing.T) {
	first := mustRunMainLog(t, io.Discard, "-metrics-addr", "127.0.0.1:0")
	m := NewMain()
	data := filepath.Join(t.TempDir(), "qrauth.db")
	if err := m.ParseFlags([]string{"-addr", "127.0.0.1:0", "-data", data, "-admin-socket", "off",
		"-metrics-addr", first.metricsLn.Addr().String()}, io.Discard); err != nil {
		t.Fatal(err)
	}
	m.LogOutput = io.Discard
	if err := m.Run(); err == nil || !strings.Contains(err.Error(), "metrics server") {
		t.Fatalf("Run = %v, want a metrics server error", err)
	}
	again := mustRunMainLog(t, io.Discard, "-data", data, "-admin-socket", "off")
	if again.DB.Path() != data {
		t.Fatalf("reopened %s", again.DB.Path())
	}
}
