package loadtest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "report", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (go test ./internal/loadtest -run Report -update to accept):\n%s", name, got)
	}
}

func sampleReport(t *testing.T, withPrevious bool) *Report {
	ts, err := ParseThresholds(`edge_hit: p95 < 50ms
shield_hit: p95 < 100ms
uncached: p95 < 200ms
frontend: ttfb_p95 < 100ms
*: error_rate < 1%
*/cacheable: hit_ratio >= 80%
run: dropped == 0`)
	if err != nil {
		t.Fatal(err)
	}
	res := sampleResult()
	for i := 0; i < 5; i++ {
		h := &Histogram{}
		for j := 0; j < 100; j++ {
			h.Record(time.Duration(10+i*10+j%7) * time.Millisecond)
		}
		res.Windows = append(res.Windows, Window{Start: res.Started.Add(time.Duration(i) * time.Second),
			Requests: 100, Failed: uint64(i % 2), P50: h.Quantile(.5), P95: h.Quantile(.95), P99: h.Quantile(.99), Max: h.Max(), Latency: h.Data()})
	}
	rp := &Report{Scenario: "load", Label: "v1.2.3", Result: res, Outcomes: Evaluate(res, ts, "10x"),
		Judged: []string{"10x"}, Skipped: []string{"publisher-profile (no token: set ZOPS_LOADTEST_TOKEN)"}}
	if withPrevious {
		prev := sampleResult()
		// The previous run was faster at the edge in us-east-1.
		prev.Phases[1].Series[0] = &Series{Region: "us-east-1", Class: "edge_hit", Requests: 100}
		for i := 0; i < 100; i++ {
			prev.Phases[1].Series[0].LatencyHistogram().Record(10 * time.Millisecond)
		}
		rp.Previous, rp.PreviousDir = prev, "reports/loadtest/20261126T100000Z-load-v1.2.2"
	}
	return rp
}

func TestReportGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		prev bool
	}{{"sample", false}, {"sample-compared", true}} {
		t.Run(tc.name, func(t *testing.T) {
			rp := sampleReport(t, tc.prev)
			var md, page bytes.Buffer
			if err := rp.Markdown(&md); err != nil {
				t.Fatal(err)
			}
			if err := rp.HTML(&page); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".md", md.Bytes())
			golden(t, tc.name+".html", page.Bytes())
			if strings.Contains(page.String(), "http://") && !strings.Contains(page.String(), "http://www.w3.org/2000/svg") {
				t.Error("the page must be self-contained")
			}
		})
	}
}

func TestReportWriteAndFindPrevious(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	rp := sampleReport(t, false)
	older := ReportDirName(rp.Result.Started.Add(-time.Hour), "load", "v1")
	other := ReportDirName(rp.Result.Started.Add(-time.Minute), "loadx", "")
	cur := ReportDirName(rp.Result.Started, "load", "v1.2.3")
	for _, d := range []string{older, other} {
		if err := rp.Write(filepath.Join(root, d)); err != nil {
			t.Fatal(err)
		}
	}
	prev, dir, err := FindPrevious(root, "load", cur)
	if err != nil || prev == nil || filepath.Base(dir) != older {
		t.Fatalf("previous = %v %q %v, want %s", prev != nil, dir, err, older)
	}
	// The stored result round-trips with its histograms.
	if got, want := prev.Totals("10x")[0].LatencyHistogram().Quantile(0.95), rp.Result.Totals("10x")[0].LatencyHistogram().Quantile(0.95); got != want {
		t.Errorf("p95 after round trip %v, want %v", got, want)
	}
	b, _ := os.ReadFile(filepath.Join(root, older, "outcomes.json"))
	var outs []Outcome
	if err := json.Unmarshal(b, &outs); err != nil || len(outs) == 0 {
		t.Errorf("outcomes.json: %v", err)
	}
	if p, _, _ := FindPrevious(filepath.Join(root, "none"), "load", cur); p != nil {
		t.Error("found a previous run in a missing directory")
	}
}
