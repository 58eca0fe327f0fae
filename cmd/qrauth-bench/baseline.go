package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// BaselineResult is the bare transport ceiling of this machine: a plain
// gorilla/websocket echo server on loopback, nothing of qrauth.
type BaselineResult struct {
	Conns           int     `json:"conns"`
	Seconds         float64 `json:"seconds_each"`
	RoundTripsPerS  float64 `json:"round_trips_per_s"` // Conns connections ping-ponging
	MessagesPerS    float64 `json:"messages_per_s"`    // two per round trip
	RoundTrip       Latency `json:"round_trip"`        // one connection, one message at a time
	DialsPerS       float64 `json:"dials_per_s"`       // connect + upgrade + one round trip + close, Conns at once
	DialErrors      int64   `json:"dial_errors"`
	RoundTripErrors int64   `json:"round_trip_errors"`

	// The floor under every durable write: one 4 KiB write and fdatasync
	// at a time, in FsyncDir. A bbolt commit makes two of them.
	FsyncDir  string  `json:"fsync_dir"`
	Fdatasync Latency `json:"fdatasync"`
	FsyncPerS float64 `json:"fdatasyncs_per_s"`
}

// maxBaselineSamples bounds the latency samples of the baseline.
const maxBaselineSamples = 1_000_000

// echoMessage is about the size of the protocol's small frames.
var echoMessage = []byte(`{"type":"decision","decision":"approve","signature":"` +
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" + `"}`)

// runBaseline measures an echo server on 127.0.0.1:0: throughput with
// --baseline-conns connections, single-connection round-trip latency, and
// the rate of fresh connections.
func runBaseline(ctx context.Context, o *options, prog *progress) (*BaselineResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	up := websocket.Upgrader{ReadBufferSize: 512, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{},
		CheckOrigin: func(*http.Request) bool { return true }}
	var handlers sync.WaitGroup
	var mu sync.Mutex
	live := map[*websocket.Conn]struct{}{}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		handlers.Add(1)
		mu.Lock()
		live[ws] = struct{}{}
		mu.Unlock()
		go func() {
			defer handlers.Done()
			defer func() {
				mu.Lock()
				delete(live, ws)
				mu.Unlock()
				ws.Close()
			}()
			for {
				ws.SetReadDeadline(time.Now().Add(time.Minute))
				typ, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if err := ws.WriteMessage(typ, data); err != nil {
					return
				}
			}
		}()
	})}
	go srv.Serve(ln)
	defer func() {
		srv.Close()
		mu.Lock()
		for ws := range live {
			ws.Close()
		}
		mu.Unlock()
		waitTimeout(&handlers, 10*time.Second)
	}()
	url := "ws://" + ln.Addr().String() + "/"
	sd := newSourceDialer(o.sourceIPs, 0, o.timeout, -1)
	dialer := &websocket.Dialer{NetDialContext: sd.DialContext, HandshakeTimeout: o.timeout,
		ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{}}
	res := &BaselineResult{Conns: o.baselineConns, Seconds: o.baselineDur.Seconds()}

	roundTrip := func(ws *websocket.Conn) error {
		ws.SetWriteDeadline(time.Now().Add(o.timeout))
		if err := ws.WriteMessage(websocket.TextMessage, echoMessage); err != nil {
			return err
		}
		ws.SetReadDeadline(time.Now().Add(o.timeout))
		_, _, err := ws.ReadMessage()
		return err
	}

	// Throughput: Conns connections, each one message in flight.
	prog.update("baseline: echo throughput over %d connections", o.baselineConns)
	var trips, tripErrs atomic.Int64
	{
		conns := make([]*websocket.Conn, 0, o.baselineConns)
		for range o.baselineConns {
			ws, _, err := dialer.DialContext(ctx, url, nil)
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return nil, err
			}
			conns = append(conns, ws)
		}
		end := time.Now().Add(o.baselineDur)
		var wg sync.WaitGroup
		for _, ws := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer closeWS(ws)
				for n := 0; n < maxBaselineSamples && time.Now().Before(end) && ctx.Err() == nil; n++ {
					if err := roundTrip(ws); err != nil {
						tripErrs.Add(1)
						return
					}
					trips.Add(1)
				}
			}()
		}
		wg.Wait()
		res.RoundTripsPerS = round1(float64(trips.Load()) / o.baselineDur.Seconds())
		res.MessagesPerS = 2 * res.RoundTripsPerS
	}

	// Latency: one connection, one message at a time.
	prog.update("baseline: echo round-trip latency")
	{
		ws, _, err := dialer.DialContext(ctx, url, nil)
		if err != nil {
			return nil, err
		}
		samples := make([]time.Duration, 0, 4096)
		end := time.Now().Add(o.baselineDur)
		for len(samples) < maxBaselineSamples && time.Now().Before(end) && ctx.Err() == nil {
			t := time.Now()
			if err := roundTrip(ws); err != nil {
				tripErrs.Add(1)
				break
			}
			samples = append(samples, time.Since(t))
		}
		closeWS(ws)
		res.RoundTrip = summarize(samples)
	}

	// Fresh connections: dial, upgrade, one round trip, close.
	prog.update("baseline: new echo connections over %d goroutines", o.baselineConns)
	{
		var dials, dialErrs atomic.Int64
		end := time.Now().Add(o.baselineDur)
		var wg sync.WaitGroup
		for range o.baselineConns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < maxBaselineSamples && time.Now().Before(end) && ctx.Err() == nil; n++ {
					dctx, cancel := context.WithTimeout(ctx, o.timeout)
					ws, _, err := dialer.DialContext(dctx, url, nil)
					cancel()
					if err != nil {
						dialErrs.Add(1)
						continue
					}
					if err := roundTrip(ws); err != nil {
						dialErrs.Add(1)
					} else {
						dials.Add(1)
					}
					closeWS(ws)
				}
			}()
		}
		wg.Wait()
		res.DialsPerS = round1(float64(dials.Load()) / o.baselineDur.Seconds())
		res.DialErrors = dialErrs.Load()
	}
	res.RoundTripErrors = tripErrs.Load()

	// Durable writes, one at a time.
	prog.update("baseline: fdatasync")
	if err := measureFsync(ctx, o, res); err != nil {
		return nil, fmt.Errorf("fdatasync: %w", err)
	}
	prog.done()
	return res, ctx.Err()
}

// measureFsync times 4 KiB writes each followed by fdatasync, in the
// in-process server's data directory (--data-dir) or else $TMPDIR: run the
// harness with TMPDIR on the disk of the server under test.
func measureFsync(ctx context.Context, o *options, res *BaselineResult) error {
	dir := o.dataDir
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "qrauth-bench-fsync-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	res.FsyncDir = dir
	buf := make([]byte, 4096)
	samples := make([]time.Duration, 0, 1024)
	start := time.Now()
	end := start.Add(o.baselineDur)
	for len(samples) < maxBaselineSamples && time.Now().Before(end) && ctx.Err() == nil {
		t := time.Now()
		if _, err := f.WriteAt(buf, int64(len(samples)%256)*4096); err != nil {
			return err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return err
		}
		samples = append(samples, time.Since(t))
	}
	res.FsyncPerS = round1(float64(len(samples)) / time.Since(start).Seconds())
	res.Fdatasync = summarize(samples)
	return nil
}
