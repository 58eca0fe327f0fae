package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// maxSourceIPs bounds --source-ips.
const maxSourceIPs = 1 << 16

// parseIPs parses loopback addresses: "127.0.0.2-127.0.0.40,127.0.1.1,::1".
// Ranges are IPv4 only.
func parseIPs(s string) ([]net.IP, error) {
	var out []net.IP
	for _, part := range splitList(s) {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, b := net.ParseIP(strings.TrimSpace(lo)), net.ParseIP(strings.TrimSpace(hi))
		if a == nil || b == nil || !a.IsLoopback() || !b.IsLoopback() {
			return nil, fmt.Errorf("--source-ips %q: want loopback addresses such as 127.0.0.2-127.0.0.40", part)
		}
		if a.To4() == nil || b.To4() == nil {
			if isRange {
				return nil, fmt.Errorf("--source-ips %q: ranges are IPv4 only", part)
			}
			out = append(out, a)
			continue
		}
		ua, ub := binary.BigEndian.Uint32(a.To4()), binary.BigEndian.Uint32(b.To4())
		if ub < ua || ub-ua >= maxSourceIPs || len(out)+int(ub-ua) >= maxSourceIPs {
			return nil, fmt.Errorf("--source-ips %q: bad or too large range", part)
		}
		for u := ua; ; u++ {
			ip := make(net.IP, 4)
			binary.BigEndian.PutUint32(ip, u)
			out = append(out, ip)
			if u == ub {
				break
			}
		}
	}
	return out, nil
}

// sourceDialer dials TCP from the source addresses in turn, so that the
// number of connections to one server can exceed the ephemeral ports of
// one address.
type sourceDialer struct {
	ips       []net.IP
	next      atomic.Uint64
	timeout   time.Duration
	keepAlive time.Duration // <0: no TCP keep-alive probes
}

func newSourceDialer(ips []net.IP, offset int, timeout time.Duration, keepAlive time.Duration) *sourceDialer {
	d := &sourceDialer{ips: ips, timeout: timeout, keepAlive: keepAlive}
	d.next.Store(uint64(offset))
	return d
}

func (d *sourceDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout, KeepAlive: d.keepAlive}
	if len(d.ips) > 0 {
		host, _, _ := net.SplitHostPort(addr)
		dst := net.ParseIP(host)
		ip := d.ips[(d.next.Add(1)-1)%uint64(len(d.ips))]
		// A source of the other address family cannot reach dst; let the
		// kernel choose then.
		if dst == nil || (dst.To4() == nil) == (ip.To4() == nil) {
			nd.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	return nd.DialContext(ctx, network, addr)
}

// raiseOpenFileLimit lifts the soft open-file limit to the hard one: every
// room is a socket.
func raiseOpenFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func openFileLimit() (soft, hard uint64) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0, 0
	}
	return l.Cur, l.Max
}

// procStatusKiB returns a "kB" field of /proc/PID/status, such as VmRSS.
func procStatusKiB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == field {
			f := strings.Fields(v)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// procCPU returns the user+system CPU time a process has used so far.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may contain spaces; fields start after its ")".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("bad /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad /proc stat")
	}
	const hz = 100 // USER_HZ is 100 on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// errCounter counts errors by kind and keeps the first message of each.
type errCounter struct {
	mu    sync.Mutex
	n     map[string]int64
	first map[string]string
	total atomic.Int64
}

func newErrCounter() *errCounter {
	return &errCounter{n: map[string]int64{}, first: map[string]string{}}
}

func (e *errCounter) add(kind string, err error) {
	e.total.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.n) >= 100 && e.n[kind] == 0 {
		kind = "other"
	}
	e.n[kind]++
	if _, ok := e.first[kind]; !ok && err != nil {
		msg := err.Error()
		if len(msg) > 200 {
			msg = msg[:200]
		}
		e.first[kind] = msg
	}
}

func (e *errCounter) snapshot() (map[string]int64, map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := make(map[string]int64, len(e.n))
	f := make(map[string]string, len(e.first))
	for k, v := range e.n {
		n[k] = v
	}
	for k, v := range e.first {
		f[k] = v
	}
	return n, f
}

// errKind names the kind of err: the server's reason where there is one
// ("psk_unknown", "too_many_rooms"), else the transport's ("timeout",
// "econnrefused", "eaddrnotavail", "emfile", "http_503", ...).
func errKind(err error) string {
	var qe *qrauth.Error
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &qe):
		if qe.Reason != "" {
			return qe.Reason
		}
		return qe.Code
	case errors.As(err, &ce):
		if wire.IsErrorClose(ce.Code) && ce.Text != "" && len(ce.Text) <= 64 {
			return ce.Text
		}
		return "close_" + strconv.Itoa(ce.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "econnrefused"
	case errors.Is(err, syscall.ECONNRESET):
		return "econnreset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "eaddrnotavail"
	case errors.Is(err, syscall.EADDRINUSE):
		return "eaddrinuse"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "emfile"
	case errors.Is(err, syscall.EPIPE):
		return "epipe"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, websocket.ErrBadHandshake):
		return "bad_handshake"
	}
	return "other"
}

// stageError prefixes an error's kind with the step of the flow it ended.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

func stageKind(err error) string {
	var se *stageError
	if errors.As(err, &se) {
		return se.stage + ":" + errKind(se.err)
	}
	return errKind(err)
}

// handshakeError turns a refused WebSocket upgrade into the server's
// *qrauth.Error (its JSON error body), or "http_STATUS".
func handshakeError(resp *http.Response, err error) error {
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return err
	}
	defer resp.Body.Close()
	return responseError(resp)
}

func responseError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var w struct{ Code, Reason, Message string }
	if json.Unmarshal(body, &w) != nil || w.Reason == "" {
		return &qrauth.Error{Code: "http", Reason: "http_" + strconv.Itoa(resp.StatusCode), Message: resp.Status}
	}
	return &qrauth.Error{Code: w.Code, Reason: w.Reason, Message: w.Message}
}

// wireMsg is the part of a server message the harness reads.
type wireMsg struct {
	Type          string `json:"type"`
	URL           string `json:"url"`
	Ticket        string `json:"ticket"`
	RoomExpiresIn int    `json:"room_expires_in"`
	Code          string `json:"code"`
	Reason        string `json:"reason"`
	Message       string `json:"message"`
}

// readMsg reads one message by deadline; a server error message becomes
// its *qrauth.Error.
func readMsg(ws *websocket.Conn, deadline time.Time) (*wireMsg, error) {
	ws.SetReadDeadline(deadline)
	_, data, err := ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	var m wireMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &qrauth.Error{Code: qrauth.EINVALID, Reason: "malformed_message", Message: err.Error()}
	}
	if m.Type == wire.MsgError {
		return nil, &qrauth.Error{Code: m.Code, Reason: m.Reason, Message: m.Message}
	}
	return &m, nil
}

// expect reads one message and checks its type.
func expect(ws *websocket.Conn, deadline time.Time, typ string) (*wireMsg, error) {
	m, err := readMsg(ws, deadline)
	if err != nil {
		return nil, err
	}
	if m.Type != typ {
		return nil, &qrauth.Error{Code: qrauth.EINVALID, Reason: "unexpected_" + m.Type, Message: fmt.Sprintf("got %q, want %q", m.Type, typ)}
	}
	return m, nil
}

// closeWS says goodbye with a close frame and closes the connection.
func closeWS(ws *websocket.Conn) {
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(100*time.Millisecond))
	ws.Close()
}

// drainClose reads until the server's close frame (answering it) or the
// deadline, then closes.
func drainClose(ws *websocket.Conn, deadline time.Time) {
	ws.SetReadDeadline(deadline)
	for i := 0; i < 16; i++ {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	ws.Close()
}

// Latency is a summary of durations, in milliseconds.
type Latency struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

// summarize sorts d and returns its nearest-rank percentiles.
func summarize(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	pct := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return ms(d[max(0, min(i, len(d)-1))])
	}
	return Latency{N: len(d), Mean: ms(sum / time.Duration(len(d))), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), Max: ms(d[len(d)-1])}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// progress writes a status line to stderr: rewritten in place on a
// terminal, one line per update otherwise.
type progress struct {
	w     io.Writer
	quiet bool
	tty   bool
	dirty bool
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, quiet: quiet}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(format string, args ...any) {
	if p.quiet {
		return
	}
	line := fmt.Sprintf(format, args...)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.dirty = true
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// done ends the current line.
func (p *progress) done() {
	if p.dirty {
		fmt.Fprintln(p.w)
		p.dirty = false
	}
}

// note prints a line of its own.
func (p *progress) note(format string, args ...any) {
	if p.quiet {
		return
	}
	p.done()
	fmt.Fprintf(p.w, format+"\n", args...)
}

func machine(o *options) Machine {
	soft, hard := openFileLimit()
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		LoadAvgStart: loadAvg(), NoFileSoft: soft, NoFileHard: hard, Servers: o.servers, SourceIPs: len(o.sourceIPs)}
	if len(o.servers) == 0 {
		m.Servers = []string{"in-process"}
	}
	return m
}

func kib(b uint64) float64 { return math.Round(float64(b)/1024*10) / 10 }
