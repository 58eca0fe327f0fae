package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/wire"
)

// LoginResult is the outcome of a login run, or of an oidc run (Mode
// "oidc": every sign-in an OpenID Connect sign-in for a relying site).
type LoginResult struct {
	Mode            string            `json:"mode"`                   // "login" or "oidc"
	IDTokenAlg      string            `json:"id_token_alg,omitempty"` // oidc
	Rate            float64           `json:"target_rate"`
	Inflight        int               `json:"inflight_cap"`
	Devices         int               `json:"devices"`
	Registered      int64             `json:"registered"`
	RegisterErrors  map[string]int64  `json:"register_errors,omitempty"`
	RegisterSeconds float64           `json:"register_seconds"`
	Scheduled       int64             `json:"scheduled"`   // sign-ins due in the window
	NotStarted      int64             `json:"not_started"` // due while --inflight sign-ins were busy
	Started         int64             `json:"started"`
	Completed       int64             `json:"completed"`
	Failed          int64             `json:"failed"`
	Errors          map[string]int64  `json:"errors"`
	ErrorExamples   map[string]string `json:"error_examples,omitempty"`
	Seconds         float64           `json:"seconds"`
	PerSecond       float64           `json:"signins_per_s"`

	ScanToSignedIn Latency `json:"scan_to_signed_in"` // app approves → browser holds its session
	Flow           Latency `json:"flow"`              // browser opens the room → browser holds its session
	Open           Latency `json:"open"`              // browser dials → first QR code
	Join           Latency `json:"join"`              // app dials and joins → challenge
	Approve        Latency `json:"approve"`           // app approves → browser has the ticket
	Exchange       Latency `json:"exchange"`          // ticket → session (POST /api/session, durable)

	// oidc only; Flow is then authorization request → ID token verified.
	Authorize *Latency `json:"authorize,omitempty"` // authorization request → login page, site named
	Redirect  *Latency `json:"redirect,omitempty"`  // session → redirect to the site with the code
	Token     *Latency `json:"token,omitempty"`     // code → tokens (PKCE) → ID token verified

	SessionsCreated  int64 `json:"sessions_created"`  // 200 answers to the ticket exchange
	SessionsInStore  int64 `json:"sessions_in_store"` // counted afterwards through the app API; -1: not counted
	SessionsExpected int64 `json:"sessions_expected"` // one per registration and per sign-in

	ServerCPUCores  float64  `json:"server_cpu_cores,omitempty"` // external server only
	HarnessCPUCores float64  `json:"harness_cpu_cores"`          // this process (with an in-process server: both)
	ServerRSSKiB    int64    `json:"server_rss_kib,omitempty"`
	Notes           []string `json:"notes,omitempty"`
}

// loginRunner holds what every sign-in shares.
type loginRunner struct {
	o         *options
	t         *target // the browsers' instance
	phone     *target // the phones' instance: t, or another of the cluster
	http      *http.Client
	browser   *websocket.Dialer
	scanOpts  appclient.ScanOptions
	stepLimit time.Duration
}

func newLoginRunner(o *options, t, phone *target) *loginRunner {
	sd := newSourceDialer(o.sourceIPs, 0, o.timeout, -1)
	tr := &http.Transport{
		DialContext:         sd.DialContext,
		MaxIdleConns:        2 * o.inflight,
		MaxIdleConnsPerHost: 2 * o.inflight,
		IdleConnTimeout:     60 * time.Second,
		DisableCompression:  true,
	}
	return &loginRunner{
		o: o, t: t, phone: phone, stepLimit: o.timeout,
		http: &http.Client{Transport: tr, Timeout: o.timeout},
		browser: &websocket.Dialer{NetDialContext: sd.DialContext, HandshakeTimeout: o.timeout,
			ReadBufferSize: 2048, WriteBufferSize: 512, WriteBufferPool: &sync.Pool{}},
		scanOpts: appclient.ScanOptions{Socket: phone.AppSocket, Dialer: &websocket.Dialer{NetDialContext: sd.DialContext,
			HandshakeTimeout: o.timeout, ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{}}},
	}
}

// newDevice creates a phone with a fresh key and a random number that no
// earlier run used.
func (l *loginRunner) newDevice(i int) (*appclient.Device, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1e12))
	if err != nil {
		return nil, err
	}
	phone, err := qrauth.NormalizePhone(fmt.Sprintf("+99%012d", n))
	if err != nil {
		return nil, err
	}
	return &appclient.Device{Server: l.phone.URL, Origin: l.t.Origin, PhoneIDHash: qrauth.PhoneIDHash(l.t.PhoneSalt, phone),
		Name: fmt.Sprintf("bench phone %d", i), PrivateKey: priv, HTTPClient: l.http}, nil
}

// openRoom is the browser opening the login page: its socket and first QR
// code.
func (l *loginRunner) openRoom(ctx context.Context) (ws *websocket.Conn, bind string, qr *wireMsg, err error) {
	bind = l.t.Bind
	ws, resp, err := l.browser.DialContext(ctx, l.t.BrowserSocket, http.Header{
		"Origin": {l.t.Origin}, "Cookie": {"qrauth_bind=" + bind}, "User-Agent": {benchUserAgent},
	})
	if err != nil {
		return nil, "", nil, handshakeError(resp, err)
	}
	qr, err = expect(ws, time.Now().Add(l.stepLimit), wire.MsgQR)
	if err != nil {
		ws.Close()
		return nil, "", nil, err
	}
	return ws, bind, qr, nil
}

// exchange is the browser trading its ticket for a session; it returns the
// page the browser goes to next. c is the browser's HTTP client; a bind
// other than "" is sent as its cookie (the login command's browsers share
// one and keep no jar).
func (l *loginRunner) exchange(ctx context.Context, c *http.Client, bind, ticket string) (next string, err error) {
	body, _ := json.Marshal(map[string]string{"ticket": ticket})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.t.URL+wire.PathSession, strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", l.t.Origin)
	if bind != "" {
		req.Header.Set("Cookie", "qrauth_bind="+bind)
	}
	req.Header.Set("User-Agent", benchUserAgent)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", responseError(resp)
	}
	var out struct {
		SessionID string `json:"session_id"`
		Next      string `json:"next"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&out); err != nil || out.SessionID == "" {
		return "", &qrauth.Error{Code: qrauth.EINTERNAL, Reason: "no_session_id", Message: "the answer names no session"}
	}
	for _, c := range resp.Cookies() {
		if c.Name == "qrauth_session" && c.Value != "" {
			return out.Next, nil
		}
	}
	return "", &qrauth.Error{Code: qrauth.EINTERNAL, Reason: "no_session_cookie", Message: "the answer sets no session cookie"}
}

// signUp registers d: a scan of a fresh room, approved with the public key
// and a profile, and the browser's ticket exchanged.
func (l *loginRunner) signUp(ctx context.Context, d *appclient.Device) (qrauth.UserID, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*l.stepLimit)
	defer cancel()
	ws, bind, qr, err := l.openRoom(ctx)
	if err != nil {
		return "", &stageError{"open", err}
	}
	defer ws.Close()
	scan, err := d.Scan(ctx, qr.URL, l.scanOpts)
	if err != nil {
		return "", &stageError{"join", err}
	}
	defer scan.Close()
	if scan.Challenge.Mode != wire.ModeSignUp {
		return "", &stageError{"join", &qrauth.Error{Code: qrauth.ECONFLICT, Reason: "mode_" + scan.Challenge.Mode, Message: "a fresh phone was not asked to sign up"}}
	}
	if _, err := expect(ws, time.Now().Add(l.stepLimit), wire.MsgScanned); err != nil {
		return "", &stageError{"scanned", err}
	}
	done, err := scan.Approve(ctx, appclient.ApproveOptions{Profile: &qrauth.Profile{Name: d.Name}})
	if err != nil {
		return "", &stageError{"approve", err}
	}
	if done.Result != "signed_up" || done.UserID == "" {
		return "", &stageError{"approve", &qrauth.Error{Code: qrauth.EINTERNAL, Reason: "result_" + done.Result, Message: "sign-up not done"}}
	}
	m, err := expect(ws, time.Now().Add(l.stepLimit), wire.MsgApproved)
	if err != nil {
		return "", &stageError{"approved", err}
	}
	if _, err := l.exchange(ctx, l.http, bind, m.Ticket); err != nil {
		return "", &stageError{"exchange", err}
	}
	drainClose(ws, time.Now().Add(time.Second))
	return done.UserID, nil
}

// timings of one complete sign-in; authorize, redirect and token only
// in an OpenID Connect sign-in.
type timings struct {
	flow, scanToIn, open, join, approve, exchange time.Duration
	authorize, redirect, token                    time.Duration
}

// signIn runs one complete sign-in of the registered d. sessionMade is set
// once the server answered the ticket exchange with a session.
func (l *loginRunner) signIn(ctx context.Context, d *appclient.Device, sessionMade *bool) (timings, error) {
	var tm timings
	ctx, cancel := context.WithTimeout(ctx, 3*l.stepLimit)
	defer cancel()
	start := time.Now()
	ws, bind, qr, err := l.openRoom(ctx)
	if err != nil {
		return tm, &stageError{"open", err}
	}
	defer ws.Close()
	tQR := time.Now()
	tm.open = tQR.Sub(start)
	_, t1, err := l.scanApprove(ctx, cancel, ws, qr, l.http, bind, d, func(s *appclient.Scan) error { return nil }, sessionMade, &tm)
	if err != nil {
		return tm, err
	}
	tm.flow = t1.Sub(start)
	drainClose(ws, time.Now().Add(time.Second))
	return tm, nil
}

// scanApprove is the QR part of a sign-in, from the browser's first QR
// code on: the phone d scans and joins (check looks at its challenge
// besides the mode), the browser sees it scanned, the phone approves while
// the browser waits for its ticket and trades it for a session through c
// (bind: see exchange). It fills tm's join, approve, exchange and
// scanToIn, sets *sessionMade once the server answered with a session, and
// returns the page the browser goes to next and when it got its session.
// cancel ends ctx, so that the phone's goroutine stops when the browser
// fails.
func (l *loginRunner) scanApprove(ctx context.Context, cancel context.CancelFunc, ws *websocket.Conn, qr *wireMsg, c *http.Client,
	bind string, d *appclient.Device, check func(*appclient.Scan) error, sessionMade *bool, tm *timings) (next string, t1 time.Time, err error) {
	tQR := time.Now()
	scan, err := d.Scan(ctx, qr.URL, l.scanOpts)
	if err != nil {
		return "", t1, &stageError{"join", err}
	}
	defer scan.Close()
	tJoined := time.Now()
	if scan.Challenge.Mode != wire.ModeLogin {
		return "", t1, &stageError{"join", &qrauth.Error{Code: qrauth.ECONFLICT, Reason: "mode_" + scan.Challenge.Mode, Message: "a registered phone was not asked to sign in"}}
	}
	if err := check(scan); err != nil {
		return "", t1, &stageError{"join", err}
	}
	if _, err := expect(ws, time.Now().Add(l.stepLimit), wire.MsgScanned); err != nil {
		return "", t1, &stageError{"scanned", err}
	}

	// The person approves. The app and the browser each go on at their
	// own pace, as two devices do.
	t0 := time.Now()
	appDone := make(chan error, 1)
	go func() {
		done, err := scan.Approve(ctx, appclient.ApproveOptions{})
		if err == nil && done.Result != wire.ResultSignedIn {
			err = &qrauth.Error{Code: qrauth.EINTERNAL, Reason: "result_" + done.Result, Message: "not signed in"}
		}
		appDone <- err
	}()
	m, err := expect(ws, time.Now().Add(l.stepLimit), wire.MsgApproved)
	if err != nil {
		cancel()
		<-appDone
		return "", t1, &stageError{"approved", err}
	}
	tApproved := time.Now()
	next, err = l.exchange(ctx, c, bind, m.Ticket)
	t1 = time.Now()
	if err != nil {
		cancel()
		<-appDone
		return "", t1, &stageError{"exchange", err}
	}
	*sessionMade = true
	if err := <-appDone; err != nil {
		return "", t1, &stageError{"app_done", err}
	}
	tm.scanToIn, tm.join, tm.approve, tm.exchange = t1.Sub(t0), tJoined.Sub(tQR), tApproved.Sub(t0), t1.Sub(tApproved)
	return next, t1, nil
}

// record is one worker's measurements.
type record struct {
	flow, scanToIn, open, join, approve, exchange []time.Duration
	authorize, redirect, token                    []time.Duration
}

func (r *record) add(t timings) {
	r.flow = append(r.flow, t.flow)
	r.scanToIn = append(r.scanToIn, t.scanToIn)
	r.open = append(r.open, t.open)
	r.join = append(r.join, t.join)
	r.approve = append(r.approve, t.approve)
	r.exchange = append(r.exchange, t.exchange)
	r.authorize = append(r.authorize, t.authorize)
	r.redirect = append(r.redirect, t.redirect)
	r.token = append(r.token, t.token)
}

// maxSignIns bounds one run whatever the flags say.
const maxSignIns = 10_000_000

// runLogin registers o.devices phones, then runs sign-ins at o.rate for
// o.duration (or o.count of them), and counts the sessions in the store.
// With o.command "oidc" each sign-in is an OpenID Connect sign-in for a
// site registered first (signInOIDC).
func runLogin(ctx context.Context, o *options, prog *progress) (*LoginResult, error) {
	ts, closeTargets, err := openTargets(ctx, o, 0)
	if err != nil {
		return nil, err
	}
	defer closeTargets()
	t := ts[0]
	oidcMode := o.command == "oidc"
	res := &LoginResult{Mode: "login", Rate: o.rate, Inflight: o.inflight, Devices: o.devices, Errors: map[string]int64{}, SessionsInStore: -1}
	phone := t
	switch {
	case len(ts) == 2:
		// A cluster: every sign-in's browser on the first instance, its
		// phone on the second, so every room spans both.
		phone = ts[1]
		if phone.Origin != t.Origin {
			return nil, fmt.Errorf("the two servers serve different origins (%s, %s): a cluster's instances share one", t.Origin, phone.Origin)
		}
		res.Notes = append(res.Notes, "cluster: browsers on "+t.URL+", phones on "+phone.URL)
	case len(ts) > 2:
		res.Notes = append(res.Notes, "login drives the first two --server only")
	}
	if t.inproc == nil {
		res.Notes = append(res.Notes, "external server: its per-address rate limits apply; start qrauthd with large -room-rate, -room-burst, -app-rate and -app-burst")
	}
	l := newLoginRunner(o, t, phone)
	var rp *relyingSite
	if oidcMode {
		res.Mode, res.IDTokenAlg = "oidc", o.idTokenAlg
		secret, err := registerBenchClient(ctx, t, o.idTokenAlg)
		if err != nil {
			return nil, err
		}
		if rp, err = l.newRelyingSite(ctx, secret, o.idTokenAlg); err != nil {
			return nil, err
		}
	}

	// Registration.
	regStart := time.Now()
	devices := make([]*appclient.Device, 0, o.devices)
	regErrs := newErrCounter()
	{
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		rctx, cancel := context.WithTimeout(ctx, time.Duration(o.devices/16+1)*3*o.timeout+30*time.Second)
		for i := 0; i < o.devices; i++ {
			d, err := l.newDevice(i)
			if err != nil {
				cancel()
				return nil, err
			}
			select {
			case sem <- struct{}{}:
			case <-rctx.Done():
			}
			if rctx.Err() != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if _, err := l.signUp(rctx, d); err != nil {
					regErrs.add(stageKind(err), err)
					return
				}
				mu.Lock()
				devices = append(devices, d)
				mu.Unlock()
			}()
		}
		wg.Wait()
		cancel()
	}
	res.Registered = int64(len(devices))
	res.RegisterErrors, _ = regErrs.snapshot()
	res.RegisterSeconds = time.Since(regStart).Seconds()
	prog.note("login: %d of %d phones registered in %.1fs", len(devices), o.devices, res.RegisterSeconds)
	if len(devices) == 0 {
		return res, errors.New("no phone could register")
	}

	count := o.count
	if count == 0 {
		count = int(o.rate * o.duration.Seconds())
		if o.rate == 0 {
			count = maxSignIns
		}
	}
	count = min(count, maxSignIns)

	errs := newErrCounter()
	var started, completed, sessions, next atomic.Int64
	jobs := make(chan struct{}, o.inflight)
	if o.rate == 0 {
		jobs = make(chan struct{})
	}
	records := make([]*record, o.inflight)
	runCtx, cancel := context.WithTimeout(ctx, o.duration+3*o.timeout+30*time.Second)
	defer cancel()
	var workers sync.WaitGroup
	for w := range o.inflight {
		rec := &record{}
		records[w] = rec
		workers.Add(1)
		go func() {
			defer workers.Done()
			for range jobs {
				if runCtx.Err() != nil {
					continue
				}
				started.Add(1)
				d := devices[int(next.Add(1)-1)%len(devices)]
				made := false
				var tm timings
				var err error
				if oidcMode {
					tm, err = l.signInOIDC(runCtx, rp, d, &made)
				} else {
					tm, err = l.signIn(runCtx, d, &made)
				}
				if made {
					sessions.Add(1)
				}
				if err != nil {
					errs.add(stageKind(err), err)
					continue
				}
				completed.Add(1)
				rec.add(tm)
			}
		}()
	}

	cpu0, _ := procCPU(os.Getpid())
	var scpu0 time.Duration
	if t.inproc == nil && t.PID > 0 {
		scpu0, _ = procCPU(t.PID)
	}
	start := time.Now()
	var scheduled int64
	var notStarted atomic.Int64

	// The progress line has its own goroutine: a write to stderr that
	// blocks (a file on a stalled disk) must not hold up the schedule.
	progDone := make(chan struct{})
	var progWG sync.WaitGroup
	progWG.Add(1)
	go func() {
		defer progWG.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, lastDone := start, int64(0)
		for {
			select {
			case <-progDone:
				return
			case now := <-tick.C:
				c := completed.Load()
				prog.update("login %3.0fs/%.0fs  started %d  done %d  errors %d  not started %d  %.0f/s",
					now.Sub(start).Seconds(), o.duration.Seconds(), started.Load(), c, errs.total.Load(), notStarted.Load(),
					float64(c-lastDone)/now.Sub(last).Seconds())
				last, lastDone = now, c
			}
		}
	}()

	ticker := time.NewTicker(time.Millisecond)
dispatch:
	for scheduled < int64(count) && time.Since(start) < o.duration {
		if o.rate == 0 {
			select {
			case jobs <- struct{}{}:
				scheduled++
			case <-runCtx.Done():
				break dispatch
			case <-ticker.C:
			}
			continue
		}
		select {
		case <-runCtx.Done():
			break dispatch
		case <-ticker.C:
		}
		due := min(int64(time.Since(start).Seconds()*o.rate), int64(count))
		for ; scheduled < due; scheduled++ {
			select {
			case jobs <- struct{}{}:
			default:
				notStarted.Add(1) // every worker busy and the queue full
			}
		}
	}
	ticker.Stop()
	close(jobs)
	workers.Wait()
	elapsed := time.Since(start)
	close(progDone)
	progWG.Wait()
	prog.done()
	cpu1, _ := procCPU(os.Getpid())
	res.HarnessCPUCores = round2((cpu1 - cpu0).Seconds() / elapsed.Seconds())
	if t.inproc == nil && t.PID > 0 {
		scpu1, _ := procCPU(t.PID)
		res.ServerCPUCores = round2((scpu1 - scpu0).Seconds() / elapsed.Seconds())
		res.ServerRSSKiB, _ = procStatusKiB(t.PID, "VmRSS")
	}

	res.Scheduled, res.NotStarted = scheduled, notStarted.Load()
	res.Started, res.Completed = started.Load(), completed.Load()
	res.Failed = errs.total.Load()
	res.Errors, res.ErrorExamples = errs.snapshot()
	res.Seconds = elapsed.Seconds()
	res.PerSecond = round1(float64(res.Completed) / elapsed.Seconds())
	res.SessionsCreated = sessions.Load()
	var all record
	for _, r := range records {
		all.flow = append(all.flow, r.flow...)
		all.scanToIn = append(all.scanToIn, r.scanToIn...)
		all.open = append(all.open, r.open...)
		all.join = append(all.join, r.join...)
		all.approve = append(all.approve, r.approve...)
		all.exchange = append(all.exchange, r.exchange...)
		all.authorize = append(all.authorize, r.authorize...)
		all.redirect = append(all.redirect, r.redirect...)
		all.token = append(all.token, r.token...)
	}
	res.Flow, res.ScanToSignedIn = summarize(all.flow), summarize(all.scanToIn)
	res.Open, res.Join, res.Approve, res.Exchange = summarize(all.open), summarize(all.join), summarize(all.approve), summarize(all.exchange)
	if oidcMode {
		au, rd, tk := summarize(all.authorize), summarize(all.redirect), summarize(all.token)
		res.Authorize, res.Redirect, res.Token = &au, &rd, &tk
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}

	// Every session must be in the store: count them through the app API,
	// device by device.
	res.SessionsExpected = res.Registered + res.SessionsCreated
	if n, err := l.countSessions(ctx, devices); err != nil {
		res.Notes = append(res.Notes, "sessions not counted: "+err.Error())
	} else {
		res.SessionsInStore = n
	}
	return res, nil
}

// countSessions lists the sessions of every device's account.
func (l *loginRunner) countSessions(ctx context.Context, devices []*appclient.Device) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(len(devices)/8+1)*l.stepLimit+30*time.Second)
	defer cancel()
	var total atomic.Int64
	var first error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, d := range devices {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			list, err := d.Sessions(ctx)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				return
			}
			total.Add(int64(len(list)))
		}()
	}
	wg.Wait()
	return total.Load(), first
}
