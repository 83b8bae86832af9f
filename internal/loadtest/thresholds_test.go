package loadtest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseThresholds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Threshold
	}{
		{"edge_hit: p95 < 50ms", Threshold{Region: "*", Class: "edge_hit", Metric: "p95", Op: "<", Value: 50}},
		{"il-central-1/shield_hit: p99<=0.1s", Threshold{Region: "il-central-1", Class: "shield_hit", Metric: "p99", Op: "<=", Value: 100}},
		{"frontend: ttfb_p95 < 100ms", Threshold{Region: "*", Class: "frontend", Metric: "ttfb_p95", Op: "<", Value: 100}},
		{"*: error_rate < 1%", Threshold{Region: "*", Class: "*", Metric: "error_rate", Op: "<", Value: 0.01}},
		{"*/cacheable: hit_ratio >= 0.8", Threshold{Region: "*", Class: "cacheable", Metric: "hit_ratio", Op: ">=", Value: 0.8}},
		{"run: dropped == 0", Threshold{Region: "*", Class: "run", Metric: "dropped", Op: "==", Value: 0}},
		{"uncached: mean > 500us", Threshold{Region: "*", Class: "uncached", Metric: "mean", Op: ">", Value: 0.5}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseThresholds("# comment\n\n" + tc.in + "   # trailing comment")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("got %d thresholds", len(got))
			}
			g := got[0]
			g.Text, g.Line = "", 0
			if g != tc.want {
				t.Errorf("got %+v, want %+v", g, tc.want)
			}
		})
	}
}

func TestParseThresholdsRejectsMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"edge_hit p95 < 50ms", "want \"[region/]class"},
		{"edge: p95 < 50ms", "class \"edge\""},
		{"edge_hit: p97 < 50ms", "metric \"p97\" unknown"},
		{"edge_hit: p95 < 50", "want a duration with unit"},
		{"edge_hit: p95 ~ 50ms", "op one of"},
		{"edge_hit: p95 => 50ms", "operator"},
		{"*: error_rate < 150%", "between 0 and 100%"},
		{"us-east-1/run: dropped == 0", "run thresholds take no region"},
		{"run: p95 < 50ms", "metric \"p95\" unknown"},
		{"private: hit_ratio > 0", "never be cached"},
		{"/edge_hit: p95 < 5ms", "empty region"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseThresholds(tc.in)
			if !errors.Is(err, ErrBadThreshold) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrBadThreshold mentioning %q", err, tc.want)
			}
		})
	}
	// Every bad line is reported at once, with its line number.
	_, err := ParseThresholds("edge_hit: p95 < 50ms\nbad\nfrontend: p95 < x")
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("err = %v, want lines 2 and 3", err)
	}
}

func TestDefaultThresholdFileParses(t *testing.T) {
	t.Parallel()
	p, err := RepoPath(DefaultThresholdsFile)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := LoadThresholds(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) < 6 {
		t.Errorf("only %d thresholds", len(ts))
	}
}

// sampleResult builds a result with known latencies.
func sampleResult() *Result {
	mk := func(region, class string, n int, lat time.Duration, failed, hits uint64) *Series {
		s := &Series{Region: region, Class: class, Requests: uint64(n), Failed: failed, Hits: hits}
		for i := 0; i < n; i++ {
			s.LatencyHistogram().Record(lat)
			s.TTFBHistogram().Record(lat / 2)
		}
		s.Latency, s.TTFB = s.lat.Data(), s.ttfb.Data()
		return s
	}
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	return &Result{
		Name: "sample", Target: "http://127.0.0.1:17443", Started: start, Duration: 70 * time.Second,
		Regions: []string{"us-east-1", "il-central-1"},
		Phases: []Phase{
			{Name: "warmup", Start: start, End: start.Add(10 * time.Second), StartRate: 50, EndRate: 50, Planned: 10 * time.Second, Scheduled: 500,
				Series: []*Series{mk("us-east-1", "uncached", 250, 150*time.Millisecond, 0, 0), mk("il-central-1", "uncached", 250, 120*time.Millisecond, 0, 0)}},
			{Name: "10x", Start: start.Add(10 * time.Second), End: start.Add(70 * time.Second), StartRate: 500, EndRate: 500, Planned: 60 * time.Second, Scheduled: 30000, Dropped: 3,
				Errors: []ErrorCount{{Kind: "connection refused", Count: 3}},
				Series: []*Series{
					mk("us-east-1", "edge_hit", 12000, 12*time.Millisecond, 0, 12000),
					mk("us-east-1", "shield_hit", 1000, 95*time.Millisecond, 0, 1000),
					mk("us-east-1", "uncached", 1500, 160*time.Millisecond, 15, 0),
					mk("us-east-1", "frontend", 500, 30*time.Millisecond, 0, 500),
					mk("il-central-1", "edge_hit", 12000, 11*time.Millisecond, 0, 12000),
					mk("il-central-1", "shield_hit", 1000, 75*time.Millisecond, 0, 1000),
					mk("il-central-1", "uncached", 1500, 240*time.Millisecond, 300, 0),
					mk("il-central-1", "frontend", 500, 25*time.Millisecond, 0, 500),
				}},
		},
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	ts, err := ParseThresholds(`edge_hit: p95 < 50ms
shield_hit: p95 < 100ms
uncached: p95 < 200ms
private: p95 < 200ms
frontend: ttfb_p95 < 100ms
*: error_rate < 1%
*/cacheable: hit_ratio >= 80%
run: dropped == 0`)
	if err != nil {
		t.Fatal(err)
	}
	out := Evaluate(sampleResult(), ts, "10x")
	got := map[string]string{}
	for _, o := range out {
		state := "pass"
		switch {
		case o.NoData:
			state = "nodata"
		case !o.Pass:
			state = "FAIL"
		}
		got[o.Region+"/"+o.Class+" "+o.Threshold.Metric] = state
	}
	want := map[string]string{
		"us-east-1/edge_hit p95":           "pass",
		"il-central-1/shield_hit p95":      "pass",
		"us-east-1/uncached p95":           "pass",
		"il-central-1/uncached p95":        "FAIL", // 240 ms
		"us-east-1/private p95":            "nodata",
		"il-central-1/uncached error_rate": "FAIL", // 20%
		"us-east-1/uncached error_rate":    "FAIL", // 15/1500 is exactly 1%, not below it
		"us-east-1/edge_hit error_rate":    "pass",
		"us-east-1/cacheable hit_ratio":    "pass", // 13000/14500
		"*/run dropped":                    "FAIL",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s, want %s", k, got[k], w)
		}
	}
	if !Failed(out) {
		t.Error("Failed() = false")
	}
	// Only the warm-up: the 120-150 ms uncached requests pass and nothing was dropped, but
	// with cold caches the hit ratio is 0.
	for _, o := range Evaluate(sampleResult(), ts, "warmup") {
		wantPass := o.Threshold.Metric != "hit_ratio"
		if !o.NoData && o.Pass != wantPass {
			t.Errorf("warm-up %s %s: pass=%v value=%v", o.Region, o.Text, o.Pass, o.Value)
		}
	}
}

// TestEvaluateMinSamples: with a minimum, a threshold on a series with fewer requests fails
// as "not enough samples" whatever its value, a named class with none fails too, the
// requests count itself is judged as it is, and a wildcard still skips classes the mix does
// not produce. The report says why.
func TestEvaluateMinSamples(t *testing.T) {
	t.Parallel()
	ts, err := ParseThresholds(`shield_hit: p95 < 100ms
frontend: ttfb_p95 < 100ms
private: p95 < 200ms
*: error_rate < 50%
edge_hit: requests >= 1`)
	if err != nil {
		t.Fatal(err)
	}
	res := sampleResult() // 10x: shield_hit 1000, frontend 500 per region; no private series
	out := EvaluateMin(res, ts, 600, "10x")
	got := map[string]Outcome{}
	for _, o := range out {
		got[o.Region+"/"+o.Class+" "+o.Threshold.Metric] = o
	}
	for k, want := range map[string]string{
		"us-east-1/shield_hit p95":         "pass",
		"us-east-1/frontend ttfb_p95":      "FAIL: not enough samples (500 < 600)", // 30 ms would pass
		"us-east-1/frontend error_rate":    "FAIL: not enough samples (500 < 600)", // via the wildcard
		"il-central-1/private p95":         "FAIL: not enough samples (0 < 600)",   // named, none at all
		"us-east-1/edge_hit requests":      "pass",
		"il-central-1/edge_hit error_rate": "pass",
	} {
		if v := got[k].Verdict(600); v != want {
			t.Errorf("%s: %q, want %q", k, v, want)
		}
	}
	if _, ok := got["us-east-1/private error_rate"]; ok {
		t.Error("the wildcard judged private, which the mix did not produce")
	}
	if !Failed(out) {
		t.Error("Failed() = false with too few samples")
	}
	// Without a minimum the same result passes those checks.
	for _, o := range Evaluate(res, ts, "10x") {
		if o.Class == "frontend" && !o.Pass {
			t.Errorf("no minimum: %s %s failed", o.Region, o.Text)
		}
	}
	var md strings.Builder
	rp := &Report{Scenario: "load", Result: res, Outcomes: out, Judged: []string{"10x"}, MinSamples: 600}
	if err := rp.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**FAIL**: not enough samples (500 < 600)", "on fewer than 600 samples (not enough samples)", "FAIL (too few samples)"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
}
