package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// axe-core is vendored (webclient/testdata/axe, fetched by exact version
// from npm by its fetch.sh) so that the page tests need no network.
var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(filepath.Join("..", "..", "webclient", "testdata", "axe", "axe.min.js"))
	return string(b), err
})

// axeFailing is what fails a test: every serious or critical violation, and
// the rules issue 9 found broken whatever their impact.
var axeFailing = map[string]bool{"region": true, "document-title": true, "html-has-lang": true,
	"label-content-name-mismatch": true, "autocomplete-valid": true}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// axeRun injects axe-core into the page shown now (through the DevTools
// protocol, which the page's CSP does not govern) and returns the failing
// violations, each as one line naming the page.
func axeRun(ctx context.Context) ([]string, error) {
	src, err := axeSource()
	if err != nil {
		return nil, err
	}
	var loaded bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(`typeof window.axe === 'object'`, &loaded)); err != nil {
		return nil, err
	}
	if !loaded {
		if err := chromedp.Run(ctx, chromedp.Evaluate(src+";void 0", nil)); err != nil {
			return nil, err
		}
	}
	var res struct {
		URL        string         `json:"url"`
		Violations []axeViolation `json:"violations"`
	}
	const run = `axe.run(document, {resultTypes: ['violations']}).then(r => ({
		url: location.pathname,
		violations: r.violations.map(v => ({id: v.id, impact: v.impact || '', help: v.help,
			nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))}))`
	if err := chromedp.Run(ctx, chromedp.Evaluate(run, &res, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	})); err != nil {
		return nil, err
	}
	var out []string
	for _, v := range res.Violations {
		if v.Impact == "serious" || v.Impact == "critical" || axeFailing[v.ID] {
			out = append(out, fmt.Sprintf("axe %s (%s) on %s: %s at %s", v.ID, v.Impact, res.URL, v.Help, strings.Join(v.Nodes, ", ")))
		}
	}
	return out, nil
}

// pageWatch follows one Chromium tab for a test: axe-core runs on every
// page that finishes loading and once more on the page shown when the test
// ends; console errors (Chromium logs a failed request there too), HTTP
// errors and failed requests are collected for the tests that assert a
// clean visit.
type pageWatch struct {
	t      *testing.T
	ctx    context.Context
	origin string

	axeMu sync.Mutex // one axe.run at a time: axe refuses to overlap
	wg    sync.WaitGroup

	mu       sync.Mutex
	axe      []string
	seen     map[string]bool
	network  []string
	console  []string
	requests map[network.RequestID]string
	axeRuns  int
}

// watchPages starts the watch on a tab newChromium opened. It registers a
// cleanup that fails the test on axe violations, so every page of every
// Chromium test is checked.
func watchPages(t *testing.T, ctx context.Context) *pageWatch {
	w := &pageWatch{t: t, ctx: ctx, seen: map[string]bool{}, requests: map[network.RequestID]string{}}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *page.EventLoadEventFired:
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				_ = w.check()
			}()
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.LevelError {
				w.add(&w.console, "console: "+ev.Entry.Text+" "+stripQuery(ev.Entry.URL))
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				w.add(&w.console, "console.error: "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			w.add(&w.console, "exception: "+ev.ExceptionDetails.Text)
		case *network.EventRequestWillBeSent:
			w.mu.Lock()
			w.requests[ev.RequestID] = ev.Request.Method + " " + stripQuery(ev.Request.URL)
			w.mu.Unlock()
		case *network.EventResponseReceived:
			if ev.Response.Status >= 400 {
				w.mu.Lock()
				what := w.requests[ev.RequestID]
				w.mu.Unlock()
				if what == "" {
					what = stripQuery(ev.Response.URL)
				}
				w.add(&w.network, fmt.Sprintf("HTTP %d %s (%s)", ev.Response.Status, what, ev.Type))
			}
		case *network.EventLoadingFailed:
			if !ev.Canceled {
				w.mu.Lock()
				what := w.requests[ev.RequestID]
				w.mu.Unlock()
				w.add(&w.network, fmt.Sprintf("failed %s: %s (%s)", what, ev.ErrorText, ev.Type))
			}
		}
	})
	t.Cleanup(func() {
		defer watches.Delete(ctx)
		if ctx.Err() == nil && !t.Failed() {
			// The page as the test left it.
			if err := w.check(); err != nil {
				t.Errorf("axe on the last page: %v", err)
			}
		}
		w.wg.Wait()
		if p := w.violations(); len(p) > 0 {
			t.Errorf("accessibility violations (axe-core %s):\n%s", axeVersion(), strings.Join(p, "\n"))
		}
	})
	return w
}

// stripQuery keeps secrets in query strings and fragments out of test logs.
func stripQuery(s string) string {
	if u, err := url.Parse(s); err == nil {
		u.RawQuery, u.Fragment = "", ""
		return u.String()
	}
	return s
}

func axeVersion() string {
	b, _ := os.ReadFile(filepath.Join("..", "..", "webclient", "testdata", "axe", "VERSION"))
	return strings.TrimSpace(string(b))
}

func (w *pageWatch) add(list *[]string, s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	*list = append(*list, s)
}

// check runs axe on the page shown now and records what it finds. Runs
// started by a page load ignore errors: the page may navigate away during
// the run, and its successor gets a run of its own.
func (w *pageWatch) check() error {
	w.axeMu.Lock()
	defer w.axeMu.Unlock()
	ctx, cancel := context.WithTimeout(w.ctx, 20*time.Second)
	defer cancel()
	var loc string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`location.protocol`, &loc)); err != nil {
		return err
	}
	if loc != "http:" && loc != "https:" {
		return nil // about:blank
	}
	found, err := axeRun(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.axeRuns++
	for _, f := range found {
		if !w.seen[f] {
			w.seen[f] = true
			w.axe = append(w.axe, f)
		}
	}
	return nil
}

func (w *pageWatch) violations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.axe...)
}

// Problems returns the console errors and failed requests seen so far and
// forgets them.
func (w *pageWatch) Problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := append(append([]string(nil), w.console...), w.network...)
	w.console, w.network = nil, nil
	return p
}

// Check runs axe now, for a state a test reached by clicking, and fails the
// test at its end if it found something.
func (w *pageWatch) Check() {
	w.t.Helper()
	if err := w.check(); err != nil {
		w.t.Errorf("axe: %v", err)
	}
}

// watches finds the pageWatch of a tab newChromium opened.
var watches sync.Map // context.Context → *pageWatch

func watchOf(t *testing.T, ctx context.Context) *pageWatch {
	t.Helper()
	w, ok := watches.Load(ctx)
	if !ok {
		t.Fatal("not a tab of newChromium")
	}
	return w.(*pageWatch)
}
