package server

import "time"

// Metrics is what the server tells the operator's metrics as it works.
// cmd/qrauthd passes internal/metrics' Prometheus implementation when
// -metrics-addr is set; otherwise Config.Metrics is a no-op, so the hot
// path pays one interface call per event and nothing else.
//
// Every string passed is one of a small fixed set named in this package or
// in the code's error reasons, never a user id, a phone hash, an address or
// a secret: label values must stay bounded and harmless.
// Implementations must be safe for concurrent use and must not block.
type Metrics interface {
	// SignIn counts a sign-in that ended: method is the steps passed,
	// joined with "+" ("qr", "qr+oath"), or the first one when it did not
	// finish; result is one of the Result* constants.
	SignIn(method, result string)
	// SignUp counts a sign-up that ended, as SignIn.
	SignUp(method, result string)
	// Refused counts an error answer, to a request or on a socket, by its
	// wire error code and reason.
	Refused(code, reason string)
	// ScanToSignedIn observes the time from a phone's join to the stored
	// session.
	ScanToSignedIn(d time.Duration)
	// TicketExchange observes one POST of a ticket, from the request to
	// its answer (the session's store commit included).
	TicketExchange(d time.Duration)
	// RoomsWaiting adds delta to the rooms open (+1 opened, -1 closed).
	RoomsWaiting(delta int)
	// SocketsOpen adds delta to the sockets open of a role (RoleBrowser,
	// RolePhone).
	SocketsOpen(role string, delta int)
	// RateLimited counts a request refused by the named limiter.
	RateLimited(limiter string)
}

// The results of SignIn and SignUp.
const (
	ResultOK      = "ok"      // a session was issued, or an account created
	ResultDenied  = "denied"  // the phone said no
	ResultRefused = "refused" // the server refused a step (a bad signature, a wrong ticket)
	ResultFailed  = "failed"  // the server could not finish (a store error)
)

// The socket roles of SocketsOpen.
const (
	RoleBrowser = "browser"
	RolePhone   = "phone"
)

// nopMetrics is the Metrics of a server configured without any.
type nopMetrics struct{}

func (nopMetrics) SignIn(string, string)        {}
func (nopMetrics) SignUp(string, string)        {}
func (nopMetrics) Refused(string, string)       {}
func (nopMetrics) ScanToSignedIn(time.Duration) {}
func (nopMetrics) TicketExchange(time.Duration) {}
func (nopMetrics) RoomsWaiting(int)             {}
func (nopMetrics) SocketsOpen(string, int)      {}
func (nopMetrics) RateLimited(string)           {}
