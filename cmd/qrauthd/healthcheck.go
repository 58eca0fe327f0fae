package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// defaultHealthURL is where the container's server answers: the Dockerfile
// listens on 0.0.0.0:8080, reached from inside the container on loopback.
const defaultHealthURL = "http://127.0.0.1:8080/healthz"

// runHealthcheck is `qrauthd healthcheck`: one GET of the server's health
// endpoint, exit 0 on a 2xx answer and 1 on anything else. It exists so
// that a container image with no shell and no curl (distroless) can run
// its HEALTHCHECK with the binary it already has.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("qrauthd healthcheck", flag.ContinueOnError)
	fs.SetOutput(stdout)
	target := fs.String("url", defaultHealthURL, "health endpoint to GET")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "Usage: qrauthd healthcheck [-url URL] [-timeout DURATION]\n\nExit 0 if URL answers 2xx, else 1.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		// flag has printed the error to stdout with the usage; stderr gets
		// the one line scripts read.
		fmt.Fprintf(stderr, "qrauthd healthcheck: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "qrauthd healthcheck: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if u, err := url.Parse(*target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "qrauthd healthcheck: -url %q is not an http(s) URL\n", *target)
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "qrauthd healthcheck: -timeout must be positive")
		return 2
	}
	if err := checkHealth(ctx, *target, *timeout); err != nil {
		fmt.Fprintln(stderr, "qrauthd healthcheck:", err)
		return 1
	}
	return 0
}

// checkHealth GETs target once. A redirect counts as unhealthy rather than
// being followed: the health endpoint never redirects, so one means the
// URL reaches something else (a login page would answer 200).
func checkHealth(ctx context.Context, target string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // let the connection close cleanly
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", target, res.Status)
	}
	return nil
}
