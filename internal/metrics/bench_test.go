package metrics_test

import (
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/metrics"
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/store"
)

// sink is what a QR sign-in tells the metrics: both interfaces.
type sink interface {
	server.Metrics
	store.Observer
}

// nop stands for the server's default, no metrics.
type nop struct{}

func (nop) SignIn(string, string)        {}
func (nop) SignUp(string, string)        {}
func (nop) Refused(string, string)       {}
func (nop) ScanToSignedIn(time.Duration) {}
func (nop) TicketExchange(time.Duration) {}
func (nop) RoomsWaiting(int)             {}
func (nop) SocketsOpen(string, int)      {}
func (nop) RateLimited(string)           {}
func (nop) Committed(time.Duration, int) {}
func (nop) Appended(qrauth.AuditEvent)   {}

// signIn makes the calls of one QR sign-in, in its order: two sockets and
// a room open, the session's commit and audit event, the sign-in, its
// timings, everything closed.
func signIn(m sink, ev qrauth.AuditEvent) {
	m.SocketsOpen(server.RoleBrowser, 1)
	m.RoomsWaiting(1)
	m.SocketsOpen(server.RolePhone, 1)
	m.RoomsWaiting(-1)
	m.Committed(time.Millisecond, 3)
	m.Appended(ev)
	m.SignIn("qr", server.ResultOK)
	m.ScanToSignedIn(20 * time.Millisecond)
	m.TicketExchange(2 * time.Millisecond)
	m.SocketsOpen(server.RoleBrowser, -1)
	m.SocketsOpen(server.RolePhone, -1)
}

// BenchmarkSignInHooks: what the metrics add to one sign-in, against the
// no-op default (docs/benchmarks.md, "Issue 13").
func BenchmarkSignInHooks(b *testing.B) {
	ev := qrauth.AuditEvent{Type: qrauth.AuditSignIn, UserID: "u"}
	for _, bc := range []struct {
		name string
		m    sink
	}{{"None", nop{}}, {"Prometheus", metrics.New()}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					signIn(bc.m, ev)
				}
			})
		})
	}
}
