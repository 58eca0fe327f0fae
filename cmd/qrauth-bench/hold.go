package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
)

// holdPlan is one client's share of a hold run. A client process reads it
// as the first line of its stdin; any later line, or the end of stdin,
// tells it to stop.
type holdPlan struct {
	Targets     []holdTarget  `json:"targets"`
	Rooms       int           `json:"rooms"`
	FirstRoom   int           `json:"first_room"` // global index: picks the server and the source address
	SourceIPs   []string      `json:"source_ips"`
	Timeout     time.Duration `json:"timeout"`
	Concurrency int           `json:"concurrency"`
	HardStop    time.Time     `json:"hard_stop"` // stop even if never told to
}

type holdTarget struct {
	Origin        string `json:"origin"`
	BrowserSocket string `json:"browser_socket"`
	Bind          string `json:"bind"` // an issued bind cookie
}

// workerReport is a client's state, sent every half second and at the end.
type workerReport struct {
	Final         bool              `json:"final,omitempty"`
	Opened        int64             `json:"opened"`  // rooms whose first QR code arrived
	Failed        int64             `json:"failed"`  // rooms that could not be opened
	Open          int64             `json:"open"`    // rooms open now
	Dropped       int64             `json:"dropped"` // opened, then ended before the stop
	Held          int64             `json:"held"`    // final: open when told to stop
	Rotations     int64             `json:"rotations"`
	Rotated       int64             `json:"rotated"` // rooms that have had at least one new code
	OpenDone      bool              `json:"open_done"`
	OpenSeconds   float64           `json:"open_seconds"`
	PerServer     []int64           `json:"per_server"` // rooms open now, per target
	MinRoomTTL    int               `json:"min_room_ttl"`
	Errors        map[string]int64  `json:"errors,omitempty"`
	ErrorExamples map[string]string `json:"error_examples,omitempty"`
	RSSKiB        int64             `json:"rss_kib"`
}

// runHoldWorker is the hidden subcommand hold-worker: a client process of
// a hold run. It talks JSON lines: the plan in on stdin, reports out on
// stdout.
func runHoldWorker(ctx context.Context, o *options, stdin io.Reader, stdout io.Writer) error {
	br := bufio.NewReaderSize(stdin, 1<<16)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read plan: %w", err)
	}
	var plan holdPlan
	if err := json.Unmarshal(line, &plan); err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	stop := make(chan struct{})
	go func() {
		br.ReadBytes('\n') // a line or EOF: stop
		close(stop)
	}()
	var mu sync.Mutex
	enc := json.NewEncoder(stdout)
	return holdWork(ctx, plan, stop, func(r workerReport) {
		r.RSSKiB, _ = procStatusKiB(os.Getpid(), "VmRSS")
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(r)
	})
}

// holdWork opens plan.Rooms browser rooms and keeps them waiting until
// stop, ctx or plan.HardStop, reporting its state as it goes.
func holdWork(ctx context.Context, plan holdPlan, stop <-chan struct{}, report func(workerReport)) error {
	if len(plan.Targets) == 0 {
		return errors.New("no targets")
	}
	var ips []net.IP
	for _, s := range plan.SourceIPs {
		ip := net.ParseIP(s)
		if ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("source address %q is not loopback", s)
		}
		ips = append(ips, ip)
	}
	sd := newSourceDialer(ips, plan.FirstRoom, plan.Timeout, -1)
	dialer := &websocket.Dialer{
		NetDialContext:   sd.DialContext,
		HandshakeTimeout: plan.Timeout,
		ReadBufferSize:   1024,
		WriteBufferSize:  256,
		WriteBufferPool:  &sync.Pool{},
	}
	ctx, cancel := context.WithDeadline(ctx, plan.HardStop)
	defer cancel()

	w := &holdWorker{plan: plan, dialer: dialer, errs: newErrCounter(), conns: map[int]*websocket.Conn{},
		perServer: make([]atomic.Int64, len(plan.Targets))}
	w.minTTL.Store(-1)

	stopped := make(chan struct{})
	go func() {
		select {
		case <-stop:
		case <-ctx.Done():
		}
		close(stopped)
	}()

	// Reports every half second until the end.
	reportDone := make(chan struct{})
	var reporter sync.WaitGroup
	reporter.Add(1)
	go func() {
		defer reporter.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-reportDone:
				return
			case <-t.C:
				report(w.snapshot(false))
			}
		}
	}()

	start := time.Now()
	sem := make(chan struct{}, max(1, plan.Concurrency))
	var opening sync.WaitGroup
launch:
	for i := 0; i < plan.Rooms; i++ {
		select {
		case sem <- struct{}{}:
		case <-stopped:
			break launch
		}
		opening.Add(1)
		w.rooms.Add(1)
		go w.room(ctx, i, sem, &opening)
	}
	opening.Wait()
	w.openSeconds.Store(int64(time.Since(start)))
	w.openDone.Store(true)

	<-stopped
	w.stopAll()
	waitTimeout(&w.rooms, 30*time.Second)
	close(reportDone)
	reporter.Wait()
	report(w.snapshot(true))
	return nil
}

type holdWorker struct {
	plan   holdPlan
	dialer *websocket.Dialer
	errs   *errCounter
	rooms  sync.WaitGroup

	opened, failed, open, dropped, rotations, rotated atomic.Int64
	perServer                                         []atomic.Int64
	minTTL                                            atomic.Int64
	openSeconds                                       atomic.Int64
	openDone                                          atomic.Bool

	mu       sync.Mutex
	conns    map[int]*websocket.Conn
	stopping bool
	held     int64
}

func (w *holdWorker) snapshot(final bool) workerReport {
	r := workerReport{
		Final: final, Opened: w.opened.Load(), Failed: w.failed.Load(), Open: w.open.Load(),
		Dropped: w.dropped.Load(), Rotations: w.rotations.Load(), Rotated: w.rotated.Load(),
		OpenDone: w.openDone.Load(), OpenSeconds: time.Duration(w.openSeconds.Load()).Seconds(),
		MinRoomTTL: int(w.minTTL.Load()),
	}
	for i := range w.perServer {
		r.PerServer = append(r.PerServer, w.perServer[i].Load())
	}
	if final {
		w.mu.Lock()
		r.Held = w.held
		w.mu.Unlock()
	}
	r.Errors, r.ErrorExamples = w.errs.snapshot()
	return r
}

// room opens one room and reads it until it ends or the worker stops.
func (w *holdWorker) room(ctx context.Context, i int, sem chan struct{}, opening *sync.WaitGroup) {
	defer w.rooms.Done()
	released := false
	release := func() {
		if !released {
			released = true
			<-sem
			opening.Done()
		}
	}
	defer release()
	fail := func(err error) {
		w.failed.Add(1)
		w.errs.add("open:"+errKind(err), err)
	}
	si := (w.plan.FirstRoom + i) % len(w.plan.Targets)
	t := w.plan.Targets[si]
	bind := t.Bind
	dctx, cancel := context.WithTimeout(ctx, w.plan.Timeout)
	ws, resp, err := w.dialer.DialContext(dctx, t.BrowserSocket, http.Header{
		"Origin": {t.Origin}, "Cookie": {"qrauth_bind=" + bind}, "User-Agent": {benchUserAgent},
	})
	cancel()
	if err != nil {
		fail(handshakeError(resp, err))
		return
	}
	m, err := expect(ws, time.Now().Add(w.plan.Timeout), qrauth.MsgQR)
	if err != nil {
		ws.Close()
		fail(err)
		return
	}
	for {
		old := w.minTTL.Load()
		if (old >= 0 && old <= int64(m.RoomExpiresIn)) || w.minTTL.CompareAndSwap(old, int64(m.RoomExpiresIn)) {
			break
		}
	}
	// The deadline only bounds the loop below; stopAll, which can run as
	// soon as the room is registered, moves it to now.
	ws.SetReadDeadline(w.plan.HardStop.Add(5 * time.Second))
	w.mu.Lock()
	if w.stopping {
		w.mu.Unlock()
		ws.Close()
		fail(errors.New("stopped while opening"))
		return
	}
	w.conns[i] = ws
	w.opened.Add(1)
	w.open.Add(1)
	w.perServer[si].Add(1)
	w.mu.Unlock()
	release()

	var last string
	rotated := false
	for {
		typ, reason, err := nextType(ws)
		if err != nil {
			w.mu.Lock()
			stopping := w.stopping
			delete(w.conns, i)
			w.open.Add(-1)
			w.perServer[si].Add(-1)
			if !stopping {
				w.dropped.Add(1)
				kind := errKind(err)
				if last == qrauth.MsgExpired || last == qrauth.MsgReconnect {
					kind = last
				}
				w.errs.add("dropped:"+kind, err)
			}
			w.mu.Unlock()
			break
		}
		last = typ
		if typ == qrauth.MsgQR {
			w.rotations.Add(1)
			if !rotated {
				rotated = true
				w.rotated.Add(1)
			}
		} else if typ == qrauth.MsgError && reason != "" {
			last = reason
		}
	}
	if rotated {
		w.rotated.Add(-1) // rotated counts rooms still open
	}
	closeWS(ws)
}

// qrPrefix starts every rotation message: the server encodes the type first.
var qrPrefix = []byte(`{"type":"qr"`)

// nextType reads one message and returns its type, and its reason if it is
// an error. A new QR code, by far the most common message of a waiting
// room, is recognised by its first bytes and the rest is discarded without
// being copied into memory, so that the clients stay cheap next to the
// server they measure.
func nextType(ws *websocket.Conn) (typ, reason string, err error) {
	_, r, err := ws.NextReader()
	if err != nil {
		return "", "", err
	}
	var head [16]byte
	n, _ := io.ReadFull(r, head[:])
	if bytes.HasPrefix(head[:n], qrPrefix) {
		_, err := io.Copy(io.Discard, r)
		return qrauth.MsgQR, "", err
	}
	rest, err := io.ReadAll(io.LimitReader(r, 1<<16))
	if err != nil {
		return "", "", err
	}
	var msg struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	}
	json.Unmarshal(append(head[:n:n], rest...), &msg)
	return msg.Type, msg.Reason, nil
}

// stopAll ends every open room: they count as held.
func (w *holdWorker) stopAll() {
	w.mu.Lock()
	w.stopping = true
	w.held = int64(len(w.conns))
	conns := make([]*websocket.Conn, 0, len(w.conns))
	for _, c := range w.conns {
		conns = append(conns, c)
	}
	w.mu.Unlock()
	now := time.Now()
	for _, c := range conns {
		c.SetReadDeadline(now) // the room's reader closes it
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

const benchUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 qrauth-bench"

// HoldResult is the outcome of a hold run.
type HoldResult struct {
	Rooms         int               `json:"rooms"`
	Clients       int               `json:"clients"`
	Opened        int64             `json:"opened"`
	Failed        int64             `json:"failed"`
	NotAttempted  int64             `json:"not_attempted"`
	Held          int64             `json:"held"`
	Dropped       int64             `json:"dropped"`
	Rotations     int64             `json:"rotations"`
	RoomsRotated  int64             `json:"rooms_rotated_at_sample"`
	OpenSeconds   float64           `json:"open_seconds"`
	OpenPerSecond float64           `json:"opened_per_s"`
	HoldSeconds   float64           `json:"hold_seconds"`
	MinRoomTTL    int               `json:"min_room_ttl_s"`
	Errors        map[string]int64  `json:"errors"`
	ErrorExamples map[string]string `json:"error_examples,omitempty"`
	Servers       []HoldServer      `json:"servers"`
	KiBPerRoom    float64           `json:"server_kib_per_room"` // all servers: (loaded-idle)/rooms
	ClientRSSKiB  int64             `json:"client_rss_kib"`
	Notes         []string          `json:"notes,omitempty"`
}

// HoldServer is one server's memory in a hold run.
type HoldServer struct {
	URL               string  `json:"url"`
	PID               int     `json:"pid"`
	Idle              Sample  `json:"idle"`
	Loaded            Sample  `json:"loaded"`
	PeakRSSKiB        int64   `json:"peak_rss_kib"`
	RoomsAtSample     int64   `json:"rooms_at_sample"`
	KiBPerRoom        float64 `json:"kib_per_room"`
	HeapKiBPerRoom    float64 `json:"heap_kib_per_room,omitempty"`
	StackKiBPerRoom   float64 `json:"stack_kib_per_room,omitempty"`
	GoroutinesPerRoom float64 `json:"goroutines_per_room,omitempty"`
}

// client is one hold client: a child process or, with --clients 0, a
// goroutine of this process.
type client struct {
	mu     sync.Mutex
	last   workerReport
	final  chan struct{} // closed once the final report is in
	stop   func()
	wait   func() error
	closed sync.Once
}

func (c *client) set(r workerReport) {
	c.mu.Lock()
	c.last = r
	c.mu.Unlock()
	if r.Final {
		c.closed.Do(func() { close(c.final) })
	}
}

func (c *client) get() workerReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func startClient(ctx context.Context, plan holdPlan, inProcess bool) (*client, error) {
	c := &client{final: make(chan struct{})}
	c.last.PerServer = make([]int64, len(plan.Targets))
	if inProcess {
		stop := make(chan struct{})
		var once sync.Once
		c.stop = func() { once.Do(func() { close(stop) }) }
		errc := make(chan error, 1)
		go func() {
			errc <- holdWork(ctx, plan, stop, c.set)
			c.closed.Do(func() { close(c.final) })
		}()
		c.wait = func() error { return <-errc }
		return c, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "hold-worker")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, _ := json.Marshal(plan)
	if _, err := stdin.Write(append(line, '\n')); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("client process: %w", err)
	}
	var once sync.Once
	c.stop = func() { once.Do(func() { stdin.Close() }) }
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			var r workerReport
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				c.set(r)
			}
		}
		c.closed.Do(func() { close(c.final) })
	}()
	c.wait = func() error {
		select {
		case <-readDone:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
		return cmd.Wait()
	}
	return c, nil
}

// runHold opens o.rooms rooms spread over the servers and the clients,
// waits until all are open, holds them for o.duration and measures each
// server's memory idle and loaded.
func runHold(ctx context.Context, o *options, prog *progress) (*HoldResult, error) {
	// An in-process server's rooms must outlive the run.
	ts, closeTargets, err := openTargets(ctx, o, o.openTimeout+o.duration+time.Minute)
	if err != nil {
		return nil, err
	}
	defer closeTargets()
	res := &HoldResult{Rooms: o.rooms, Clients: o.clients, Errors: map[string]int64{}, ErrorExamples: map[string]string{}}
	inproc := ts[0].inproc != nil

	// Idle figures, after a collection.
	idle := make([]Sample, len(ts))
	for i, t := range ts {
		if t.inproc != nil {
			debug.FreeOSMemory()
		}
		idle[i] = t.sample(ctx, true)
		if t.PID == 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: no --server-pid or --debug, so no memory figures", t.URL))
		}
	}
	if inproc {
		res.Notes = append(res.Notes, "in-process server: its RSS includes this harness's parent process")
		if o.clients == 0 {
			res.Notes = append(res.Notes, "--clients 0: client connections live in the server's process, so memory and goroutine figures include them")
		}
	}

	nClients := max(1, o.clients)
	soft, _ := openFileLimit()
	if per := o.rooms/nClients + 1; uint64(per)+64 > soft && o.clients > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d rooms per client process exceed the open-file limit %d: use more --clients", per, soft))
	}
	var targets []holdTarget
	for _, t := range ts {
		targets = append(targets, holdTarget{Origin: t.Origin, BrowserSocket: t.BrowserSocket, Bind: t.Bind})
	}
	var ipStrs []string
	for _, ip := range o.sourceIPs {
		ipStrs = append(ipStrs, ip.String())
	}
	start := time.Now()
	hardStop := start.Add(o.openTimeout + o.duration + 30*time.Second)
	clients := make([]*client, 0, nClients)
	defer func() {
		for _, c := range clients {
			c.stop()
		}
	}()
	first := 0
	for k := 0; k < nClients; k++ {
		n := o.rooms / nClients
		if k < o.rooms%nClients {
			n++
		}
		plan := holdPlan{Targets: targets, Rooms: n, FirstRoom: first, SourceIPs: ipStrs, Timeout: o.timeout,
			Concurrency: o.dialConc, HardStop: hardStop}
		first += n
		c, err := startClient(ctx, plan, o.clients == 0)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}

	sum := func() (r workerReport, perServer []int64, allOpen bool) {
		perServer = make([]int64, len(ts))
		allOpen = true
		r.MinRoomTTL = -1
		for _, c := range clients {
			x := c.get()
			r.Opened += x.Opened
			r.Failed += x.Failed
			r.Open += x.Open
			r.Dropped += x.Dropped
			r.Held += x.Held
			r.Rotations += x.Rotations
			r.Rotated += x.Rotated
			r.RSSKiB += x.RSSKiB
			allOpen = allOpen && x.OpenDone
			r.OpenSeconds = max(r.OpenSeconds, x.OpenSeconds)
			if x.MinRoomTTL >= 0 && (r.MinRoomTTL < 0 || x.MinRoomTTL < r.MinRoomTTL) {
				r.MinRoomTTL = x.MinRoomTTL
			}
			for i := range min(len(x.PerServer), len(perServer)) {
				perServer[i] += x.PerServer[i]
			}
		}
		return r, perServer, allOpen
	}

	peak := make([]int64, len(ts))
	loaded := make([]Sample, len(ts))
	loadedRooms := make([]int64, len(ts))
	var loadedAt time.Time
	var openDoneAt time.Time
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var lastShown time.Time
	// The loaded sample waits for every room's first new code, but no
	// later than this before the end.
	lastCall := min(2*time.Second, o.duration/4)
	deadline := start.Add(o.openTimeout + o.duration + 10*time.Second)
loop:
	for now := time.Now(); now.Before(deadline); now = time.Now() {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		r, perServer, allOpen := sum()
		var rss int64
		for i, t := range ts {
			if t.PID > 0 {
				k, _ := procStatusKiB(t.PID, "VmRSS")
				peak[i] = max(peak[i], k)
				rss += k
			}
		}
		if openDoneAt.IsZero() && (allOpen || time.Since(start) > o.openTimeout) {
			openDoneAt = time.Now()
			if !allOpen {
				res.Notes = append(res.Notes, "--open-timeout ended before every room was attempted")
			}
			for _, c := range clients {
				if !c.get().OpenDone && time.Since(start) > o.openTimeout {
					c.stop()
				}
			}
		}
		if time.Since(lastShown) >= time.Second {
			lastShown = time.Now()
			phase := "opening"
			if !openDoneAt.IsZero() {
				phase = fmt.Sprintf("holding %3.0fs/%.0fs", time.Since(openDoneAt).Seconds(), o.duration.Seconds())
			}
			prog.update("hold %s  open %d/%d  failed %d  dropped %d  rotations %d  server rss %.1f MiB",
				phase, r.Open, o.rooms, r.Failed, r.Dropped, r.Rotations, float64(rss)/1024)
		}
		if openDoneAt.IsZero() {
			continue
		}
		holdEnd := openDoneAt.Add(o.duration)
		// The loaded sample: once every open room has had a new code, or
		// just before the end.
		if loadedAt.IsZero() && ((r.Open > 0 && r.Rotated >= r.Open) || time.Until(holdEnd) < lastCall) {
			loadedAt = time.Now()
			res.RoomsRotated = r.Rotated
			for i, t := range ts {
				if t.inproc != nil {
					debug.FreeOSMemory()
				}
				loaded[i] = t.sample(ctx, true)
				loadedRooms[i] = perServer[i]
			}
		}
		if !time.Now().Before(holdEnd) && !loadedAt.IsZero() {
			break
		}
	}
	if !openDoneAt.IsZero() {
		res.HoldSeconds = time.Since(openDoneAt).Seconds()
	}
	for _, c := range clients {
		c.stop()
	}
	for _, c := range clients {
		select {
		case <-c.final:
		case <-time.After(60 * time.Second):
		}
		c.wait()
	}
	prog.done()

	r, _, _ := sum()
	res.Opened, res.Failed, res.Held, res.Dropped, res.Rotations = r.Opened, r.Failed, r.Held, r.Dropped, r.Rotations
	res.NotAttempted = int64(o.rooms) - r.Opened - r.Failed
	res.OpenSeconds = r.OpenSeconds
	if r.OpenSeconds > 0 {
		res.OpenPerSecond = float64(r.Opened) / r.OpenSeconds
	}
	res.MinRoomTTL = r.MinRoomTTL
	res.ClientRSSKiB = r.RSSKiB
	for _, c := range clients {
		x := c.get()
		for k, v := range x.Errors {
			res.Errors[k] += v
		}
		for k, v := range x.ErrorExamples {
			res.ErrorExamples[k] = v
		}
	}
	if r.MinRoomTTL >= 0 && float64(r.MinRoomTTL) < r.OpenSeconds+o.duration.Seconds() {
		res.Notes = append(res.Notes, fmt.Sprintf("rooms live %ds on the server, less than the run: start it with a longer -room-ttl", r.MinRoomTTL))
	}
	var delta, rooms int64
	for i, t := range ts {
		hs := HoldServer{URL: t.URL, PID: t.PID, Idle: idle[i], Loaded: loaded[i], PeakRSSKiB: peak[i], RoomsAtSample: loadedRooms[i]}
		if n := float64(loadedRooms[i]); n > 0 && t.PID > 0 && loaded[i].RSSKiB > 0 {
			hs.KiBPerRoom = round1(float64(loaded[i].RSSKiB-idle[i].RSSKiB) / n)
			delta += loaded[i].RSSKiB - idle[i].RSSKiB
			rooms += loadedRooms[i]
			if loaded[i].HeapInuseKiB > 0 {
				hs.HeapKiBPerRoom = round1((loaded[i].HeapInuseKiB - idle[i].HeapInuseKiB) / n)
				hs.StackKiBPerRoom = round1((loaded[i].StackKiB - idle[i].StackKiB) / n)
				hs.GoroutinesPerRoom = round2(float64(loaded[i].Goroutines-idle[i].Goroutines) / n)
			}
		}
		res.Servers = append(res.Servers, hs)
	}
	if rooms > 0 {
		res.KiBPerRoom = round1(float64(delta) / float64(rooms))
	}
	if loadedAt.IsZero() {
		res.Notes = append(res.Notes, "no loaded sample was taken (the run ended early)")
	} else if res.RoomsRotated < res.Held {
		res.Notes = append(res.Notes, "the loaded sample was taken before every room had a new code: lengthen --duration beyond the PSK rotation")
	}
	return res, ctx.Err()
}

func round1(x float64) float64 { return float64(int64(x*10+sign(x)*0.5)) / 10 }
func round2(x float64) float64 { return float64(int64(x*100+sign(x)*0.5)) / 100 }
func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}
