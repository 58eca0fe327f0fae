package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one invocation measured; --json prints it.
type Report struct {
	Command  string             `json:"command"`
	Machine  Machine            `json:"machine"`
	Baseline *BaselineResult    `json:"baseline,omitempty"`
	Hold     *HoldResult        `json:"hold,omitempty"`
	Login    *LoginResult       `json:"login,omitempty"`
	Ratios   map[string]float64 `json:"ratios,omitempty"`
}

// Machine describes where the figures were taken.
type Machine struct {
	CPUs         int      `json:"cpus"`
	GOMAXPROCS   int      `json:"gomaxprocs"`
	GoVersion    string   `json:"go_version"`
	LoadAvgStart string   `json:"loadavg_start"`
	LoadAvgEnd   string   `json:"loadavg_end"`
	NoFileSoft   uint64   `json:"nofile_soft"`
	NoFileHard   uint64   `json:"nofile_hard"`
	Servers      []string `json:"servers"`
	SourceIPs    int      `json:"source_ips"`
}

// wsMessagesPerSignIn counts the WebSocket data messages of one sign-in:
// qr, scanned and approved to the browser; join and decision from the app;
// challenge and done to the app. Besides them a sign-in costs two
// WebSocket handshakes, their close handshakes and one HTTP request.
const wsMessagesPerSignIn = 7

func ratios(r *Report) map[string]float64 {
	b := r.Baseline
	if b == nil {
		return nil
	}
	m := map[string]float64{}
	div := func(name string, x, y float64) {
		if y > 0 && x > 0 {
			m[name] = round3(x / y)
		}
	}
	if l := r.Login; l != nil {
		div("signins_per_echo_round_trip", l.PerSecond, b.RoundTripsPerS)
		div("signin_ws_messages_per_echo_message", l.PerSecond*wsMessagesPerSignIn, b.MessagesPerS)
		div("signin_sockets_per_echo_dial", l.PerSecond*2, b.DialsPerS)
		div("scan_to_signed_in_p50_per_echo_rtt_p50", l.ScanToSignedIn.P50, b.RoundTrip.P50)
		div("scan_to_signed_in_p99_per_echo_rtt_p99", l.ScanToSignedIn.P99, b.RoundTrip.P99)
		div("flow_p99_per_echo_rtt_p99", l.Flow.P99, b.RoundTrip.P99)
		div("signins_per_serial_fdatasync", l.PerSecond, b.FsyncPerS)
		div("scan_to_signed_in_p99_per_fdatasync_p99", l.ScanToSignedIn.P99, b.Fdatasync.P99)
	}
	if h := r.Hold; h != nil {
		div("rooms_opened_per_echo_dial", h.OpenPerSecond, b.DialsPerS)
	}
	return m
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

func printReport(w io.Writer, r *Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	m := r.Machine
	fmt.Fprintf(tw, "qrauth-bench %s\n", r.Command)
	fmt.Fprintf(tw, "machine\t%d CPUs, GOMAXPROCS %d, %s, open files %d/%d, %d source addresses\n", m.CPUs, m.GOMAXPROCS, m.GoVersion, m.NoFileSoft, m.NoFileHard, m.SourceIPs)
	fmt.Fprintf(tw, "load average\t%s at start, %s at end\n", m.LoadAvgStart, m.LoadAvgEnd)
	fmt.Fprintf(tw, "servers\t%s\n", strings.Join(m.Servers, ", "))

	if b := r.Baseline; b != nil {
		fmt.Fprintf(tw, "\nBASELINE (gorilla/websocket echo on loopback, %s each)\n", time.Duration(b.Seconds*float64(time.Second)))
		fmt.Fprintf(tw, "echo round trips/s (%d conns)\t%.0f  (%.0f messages/s)\n", b.Conns, b.RoundTripsPerS, b.MessagesPerS)
		fmt.Fprintf(tw, "echo round trip, 1 conn\t%s\n", latencyLine(b.RoundTrip))
		fmt.Fprintf(tw, "new connections/s (dial+upgrade+echo+close)\t%.0f\n", b.DialsPerS)
		fmt.Fprintf(tw, "4 KiB write + fdatasync, 1 at a time (%s)\t%s  (%.0f/s)\n", b.FsyncDir, latencyLine(b.Fdatasync), b.FsyncPerS)
		if b.DialErrors+b.RoundTripErrors > 0 {
			fmt.Fprintf(tw, "baseline errors\t%d dial, %d round trip\n", b.DialErrors, b.RoundTripErrors)
		}
	}

	if h := r.Hold; h != nil {
		fmt.Fprintf(tw, "\nHOLD (%d rooms, %d client processes)\n", h.Rooms, h.Clients)
		fmt.Fprintf(tw, "rooms opened / failed / not attempted\t%d / %d / %d\n", h.Opened, h.Failed, h.NotAttempted)
		fmt.Fprintf(tw, "rooms held to the end / dropped\t%d / %d\n", h.Held, h.Dropped)
		fmt.Fprintf(tw, "opening\t%.1fs, %.0f rooms/s\n", h.OpenSeconds, h.OpenPerSecond)
		fmt.Fprintf(tw, "held for\t%.0fs after the last opened; %d new QR codes received; %d rooms had rotated at the sample\n", h.HoldSeconds, h.Rotations, h.RoomsRotated)
		for _, s := range h.Servers {
			fmt.Fprintf(tw, "server %s pid %d\n", s.URL, s.PID)
			fmt.Fprintf(tw, "  RSS idle / loaded / peak\t%s / %s / %s\n", mib(s.Idle.RSSKiB), mib(s.Loaded.RSSKiB), mib(s.PeakRSSKiB))
			fmt.Fprintf(tw, "  RSS per waiting room\t%.1f KiB (%d rooms at the sample)\n", s.KiBPerRoom, s.RoomsAtSample)
			if s.Loaded.Goroutines > 0 {
				fmt.Fprintf(tw, "  goroutines idle / loaded\t%d / %d (%.2f per room)\n", s.Idle.Goroutines, s.Loaded.Goroutines, s.GoroutinesPerRoom)
				fmt.Fprintf(tw, "  Go heap, stack per room\t%.1f KiB, %.1f KiB\n", s.HeapKiBPerRoom, s.StackKiBPerRoom)
			}
		}
		if len(h.Servers) > 1 {
			fmt.Fprintf(tw, "all servers: RSS per waiting room\t%.1f KiB\n", h.KiBPerRoom)
		}
		fmt.Fprintf(tw, "client processes' RSS\t%s\n", mib(h.ClientRSSKiB))
		printErrors(tw, "hold errors", h.Errors, h.ErrorExamples)
		for _, n := range h.Notes {
			fmt.Fprintf(tw, "note\t%s\n", n)
		}
	}

	if l := r.Login; l != nil {
		rate := fmt.Sprintf("%.0f/s", l.Rate)
		if l.Rate == 0 {
			rate = "as fast as possible"
		}
		title := "LOGIN"
		if l.Mode == "oidc" {
			title = "OPENID CONNECT SIGN-IN (authorization request → " + l.IDTokenAlg + " ID token verified)"
		}
		fmt.Fprintf(tw, "\n%s (target %s, %d phones, at most %d in flight)\n", title, rate, l.Devices, l.Inflight)
		fmt.Fprintf(tw, "phones registered\t%d in %.1fs\n", l.Registered, l.RegisterSeconds)
		printErrors(tw, "registration errors", l.RegisterErrors, nil)
		fmt.Fprintf(tw, "sign-ins scheduled / not started / started\t%d / %d / %d\n", l.Scheduled, l.NotStarted, l.Started)
		fmt.Fprintf(tw, "sign-ins completed / failed\t%d / %d\n", l.Completed, l.Failed)
		fmt.Fprintf(tw, "achieved\t%.1f sign-ins/s over %.1fs\n", l.PerSecond, l.Seconds)
		fmt.Fprintf(tw, "scan-to-signed-in\t%s\n", latencyLine(l.ScanToSignedIn))
		fmt.Fprintf(tw, "whole flow\t%s\n", latencyLine(l.Flow))
		if l.Authorize != nil {
			fmt.Fprintf(tw, "  authorize → login page names the site\t%s\n", latencyLine(*l.Authorize))
		}
		fmt.Fprintf(tw, "  browser open (dial → QR)\t%s\n", latencyLine(l.Open))
		fmt.Fprintf(tw, "  app join (dial → challenge)\t%s\n", latencyLine(l.Join))
		fmt.Fprintf(tw, "  approve → browser has ticket\t%s\n", latencyLine(l.Approve))
		fmt.Fprintf(tw, "  ticket → session (durable)\t%s\n", latencyLine(l.Exchange))
		if l.Redirect != nil && l.Token != nil {
			fmt.Fprintf(tw, "  session → redirect with code\t%s\n", latencyLine(*l.Redirect))
			fmt.Fprintf(tw, "  code → tokens (PKCE) → ID token verified\t%s\n", latencyLine(*l.Token))
		}
		store := "not counted"
		if l.SessionsInStore >= 0 {
			store = fmt.Sprint(l.SessionsInStore)
		}
		fmt.Fprintf(tw, "sessions in store / expected\t%s / %d (%d sign-ups + %d sign-ins answered 200)\n", store, l.SessionsExpected, l.Registered, l.SessionsCreated)
		if l.ServerCPUCores > 0 {
			fmt.Fprintf(tw, "server CPU\t%.2f cores\n", l.ServerCPUCores)
		}
		fmt.Fprintf(tw, "harness CPU\t%.2f cores\n", l.HarnessCPUCores)
		printErrors(tw, "sign-in errors", l.Errors, l.ErrorExamples)
		for _, n := range l.Notes {
			fmt.Fprintf(tw, "note\t%s\n", n)
		}
	}

	if len(r.Ratios) > 0 {
		fmt.Fprintf(tw, "\nRATIOS TO THE BASELINE\n")
		keys := make([]string, 0, len(r.Ratios))
		for k := range r.Ratios {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%.3f\n", k, r.Ratios[k])
		}
	}
	tw.Flush()
	if len(r.Ratios) > 0 && r.Login != nil {
		if r.Login.Mode == "oidc" {
			fmt.Fprintf(w, "(an OpenID Connect sign-in is %d WebSocket messages, 2 WebSocket handshakes and %d HTTP requests)\n", wsMessagesPerSignIn, httpPerOIDCSignIn)
		} else {
			fmt.Fprintf(w, "(a sign-in is %d WebSocket messages, 2 WebSocket handshakes and 1 HTTP request)\n", wsMessagesPerSignIn)
		}
	}
}

func printErrors(w io.Writer, title string, errs map[string]int64, examples map[string]string) {
	if len(errs) == 0 {
		fmt.Fprintf(w, "%s\tnone\n", title)
		return
	}
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ex := ""
		if e := examples[k]; e != "" {
			ex = "  e.g. " + e
		}
		fmt.Fprintf(w, "%s\t%s: %d%s\n", title, k, errs[k], ex)
	}
}

func latencyLine(l Latency) string {
	if l.N == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms  (n %d)", l.P50, l.P90, l.P99, l.Max, l.N)
}

func mib(k int64) string {
	if k == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(k)/1024)
}
