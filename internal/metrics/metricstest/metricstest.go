// Package metricstest scrapes a metrics endpoint the way Prometheus does,
// for tests: one GET, the text format parsed by prometheus/common's expfmt.
package metricstest

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape GETs url and returns its metric families by name.
func Scrape(tb testing.TB, url string) map[string]*dto.MetricFamily {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	return fams
}

// Value returns the value of the counter or gauge of fam whose labels
// include every name=value of labels, summed over the series that match.
func Value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	var sum float64
	for _, m := range matching(fams, name, labels) {
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum
}

// SampleCount returns the observations of the histogram name.
func SampleCount(fams map[string]*dto.MetricFamily, name string) uint64 {
	var n uint64
	for _, m := range matching(fams, name, nil) {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

func matching(fams map[string]*dto.MetricFamily, name string, labels map[string]string) []*dto.Metric {
	fam, ok := fams[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, m := range fam.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range labels {
			if have[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}
