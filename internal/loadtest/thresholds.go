package loadtest

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultThresholdsFile is the threshold file, relative to the repository root.
const DefaultThresholdsFile = "loadtest/thresholds.txt"

// ErrBadThreshold marks a malformed threshold.
var ErrBadThreshold = errors.New("malformed threshold")

// Threshold is one line of a threshold file:
//
//	[region/]class: metric op value
//	run: metric op value
//
// region is a region name or * (each region on its own, the default); class is edge_hit,
// shield_hit, uncached, private, frontend, cacheable (edge_hit+shield_hit+uncached together)
// or * (each class on its own). Metrics: p50 p90 p95 p99 max mean (request latency) and
// ttfb_p50 ... ttfb_p99 with a unit ms, s or us; error_rate and hit_ratio as a percentage
// ("1%") or fraction; requests as a count. For run: dropped (count), dropped_rate,
// error_rate. Operators: < <= > >= ==.
type Threshold struct {
	Line   int
	Text   string
	Region string // "*" for each region
	Class  string // class name, "cacheable", "*" or "run"
	Metric string
	Op     string
	Value  float64 // milliseconds for latencies, a fraction for rates, a count otherwise
}

type metricKind int

const (
	metricLatency metricKind = iota
	metricRate
	metricCount
)

var seriesMetrics = map[string]metricKind{
	"p50": metricLatency, "p90": metricLatency, "p95": metricLatency, "p99": metricLatency,
	"max": metricLatency, "mean": metricLatency,
	"ttfb_p50": metricLatency, "ttfb_p90": metricLatency, "ttfb_p95": metricLatency, "ttfb_p99": metricLatency,
	"error_rate": metricRate, "hit_ratio": metricRate, "requests": metricCount,
}

var runMetrics = map[string]metricKind{"dropped": metricCount, "dropped_rate": metricRate, "error_rate": metricRate}

// LoadThresholds reads a threshold file.
func LoadThresholds(path string) ([]Threshold, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read thresholds: %w", err)
	}
	t, err := ParseThresholds(string(b))
	if err != nil {
		return nil, fmt.Errorf("thresholds %s: %w", path, err)
	}
	return t, nil
}

// ParseThresholds parses threshold lines ('#' starts a comment; ';' also separates
// thresholds, for one-line environment values). Every malformed line is reported.
func ParseThresholds(s string) ([]Threshold, error) {
	var out []Threshold
	var errs []error
	for n, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, part := range strings.Split(line, ";") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			t, err := parseThreshold(part)
			if err != nil {
				errs = append(errs, fmt.Errorf("line %d %q: %w", n+1, part, err))
				continue
			}
			t.Line = n + 1
			out = append(out, t)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func parseThreshold(s string) (Threshold, error) {
	t := Threshold{Text: strings.Join(strings.Fields(s), " ")}
	sel, expr, ok := strings.Cut(s, ":")
	if !ok {
		return t, fmt.Errorf("%w: want \"[region/]class: metric op value\", e.g. \"edge_hit: p95 < 50ms\"", ErrBadThreshold)
	}
	sel = strings.TrimSpace(sel)
	t.Region, t.Class = "*", sel
	if r, c, ok := strings.Cut(sel, "/"); ok {
		t.Region, t.Class = strings.TrimSpace(r), strings.TrimSpace(c)
	}
	if t.Region == "" {
		return t, fmt.Errorf("%w: empty region before /", ErrBadThreshold)
	}
	known := t.Class == "*" || t.Class == "cacheable" || t.Class == "run"
	if _, ok := ParseClass(t.Class); !ok && !known {
		return t, fmt.Errorf("%w: class %q: want one of edge_hit, shield_hit, uncached, private, frontend, cacheable, * or run", ErrBadThreshold, t.Class)
	}
	if t.Class == "run" && t.Region != "*" {
		return t, fmt.Errorf("%w: run thresholds take no region", ErrBadThreshold)
	}
	expr = strings.TrimSpace(expr)
	var opAt int
	opAt = strings.IndexAny(expr, "<>=")
	if opAt <= 0 {
		return t, fmt.Errorf("%w: want \"metric op value\" with op one of < <= > >= ==", ErrBadThreshold)
	}
	t.Metric = strings.TrimSpace(expr[:opAt])
	rest := expr[opAt:]
	for _, op := range []string{"<=", ">=", "==", "<", ">"} {
		if strings.HasPrefix(rest, op) {
			t.Op = op
			rest = rest[len(op):]
			break
		}
	}
	if t.Op == "" {
		return t, fmt.Errorf("%w: operator in %q: want one of < <= > >= ==", ErrBadThreshold, rest)
	}
	metrics := seriesMetrics
	if t.Class == "run" {
		metrics = runMetrics
	}
	kind, ok := metrics[t.Metric]
	if !ok {
		var names []string
		for k := range metrics {
			names = append(names, k)
		}
		return t, fmt.Errorf("%w: metric %q unknown here (known: %s)", ErrBadThreshold, t.Metric, strings.Join(sortedStrings(names), " "))
	}
	if t.Metric == "hit_ratio" && t.Class != "cacheable" && t.Class != "*" {
		if c, _ := ParseClass(t.Class); c == ClassPrivate {
			return t, fmt.Errorf("%w: hit_ratio of private calls makes no sense (they must never be cached)", ErrBadThreshold)
		}
	}
	v, err := parseValue(strings.TrimSpace(rest), kind)
	if err != nil {
		return t, fmt.Errorf("%w: value: %v", ErrBadThreshold, err)
	}
	t.Value = v
	return t, nil
}

func parseValue(s string, k metricKind) (float64, error) {
	switch k {
	case metricLatency:
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%q: want a duration with unit, e.g. 50ms", s)
		}
		return float64(d) / float64(time.Millisecond), nil
	case metricRate:
		pct := strings.HasSuffix(s, "%")
		f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil || math.IsNaN(f) {
			return 0, fmt.Errorf("%q: want a percentage (1%%) or a fraction (0.01)", s)
		}
		if pct {
			f /= 100
		}
		if f < 0 || f > 1 {
			return 0, fmt.Errorf("%q: a rate lies between 0 and 100%%", s)
		}
		return f, nil
	default:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("%q: want a non-negative number", s)
		}
		return f, nil
	}
}

func sortedStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// Outcome is one threshold checked against one region and class.
type Outcome struct {
	Threshold Threshold `json:"-"`
	Text      string    `json:"threshold"`
	Region    string    `json:"region"`
	Class     string    `json:"class"`
	Value     float64   `json:"value"`
	Pass      bool      `json:"pass"`
	NoData    bool      `json:"no_data"` // nothing to judge: reported, not a failure
	// TooFew: the series had fewer requests than the run's minimum, so the figure proves
	// nothing (a p95 of six samples is the second-slowest of six): a failure, whatever Value.
	TooFew  bool   `json:"too_few,omitempty"`
	Samples uint64 `json:"samples"`
}

// Verdict is the outcome in words: "pass", "FAIL", "no data" or "FAIL: not enough samples
// (N < M)".
func (o Outcome) Verdict(min uint64) string {
	switch {
	case o.NoData:
		return "no data"
	case o.TooFew:
		return fmt.Sprintf("FAIL: not enough samples (%d < %d)", o.Samples, min)
	case !o.Pass:
		return "FAIL"
	}
	return "pass"
}

// Failed reports whether any outcome failed.
func Failed(os []Outcome) bool {
	for _, o := range os {
		if !o.Pass && !o.NoData {
			return true
		}
	}
	return false
}

// Evaluate checks thresholds against the totals of the given phases (all when none).
func Evaluate(r *Result, ts []Threshold, phases ...string) []Outcome {
	return EvaluateMin(r, ts, 0, phases...)
}

// EvaluateMin is Evaluate with a minimum number of samples: a threshold on a series with
// fewer requests than min fails as not enough samples instead of passing on a handful. The
// requests metric itself is a count and is judged as it is; so is a wildcard class that has
// no request at all (the mix does not produce it), as in Evaluate.
func EvaluateMin(r *Result, ts []Threshold, min uint64, phases ...string) []Outcome {
	totals := r.Totals(phases...)
	var out []Outcome
	for _, t := range ts {
		if t.Class == "run" {
			out = append(out, evalRun(r, t, phases))
			continue
		}
		regions := r.Regions
		if t.Region != "*" {
			regions = []string{t.Region}
		}
		for _, reg := range regions {
			var classes []string
			switch t.Class {
			case "*":
				classes = classNames[:]
			default:
				classes = []string{t.Class}
			}
			for _, c := range classes {
				s := pick(totals, reg, c)
				o := Outcome{Threshold: t, Text: t.Text, Region: reg, Class: c}
				if s != nil {
					o.Samples = s.Requests
				}
				judgeCount := min > 0 && t.Metric != "requests"
				if o.Samples == 0 && (!judgeCount || t.Class == "*") {
					o.NoData = true
					if t.Class != "*" { // a wildcard quietly skips classes the mix did not produce
						out = append(out, o)
					}
					continue
				}
				if judgeCount && o.Samples < min {
					o.TooFew = true
					if o.Samples > 0 {
						o.Value = seriesValue(s, t.Metric)
					}
					out = append(out, o)
					continue
				}
				o.Value = seriesValue(s, t.Metric)
				o.Pass = compare(o.Value, t.Op, t.Value)
				out = append(out, o)
			}
		}
	}
	return out
}

func pick(totals []*Series, region, class string) *Series {
	if class == "cacheable" {
		agg := &Series{Region: region, Class: class}
		for _, s := range totals {
			if s.Region == region && (s.Class == "edge_hit" || s.Class == "shield_hit" || s.Class == "uncached") {
				agg.merge(s)
			}
		}
		return agg
	}
	for _, s := range totals {
		if s.Region == region && s.Class == class {
			return s
		}
	}
	return nil
}

func seriesValue(s *Series, metric string) float64 {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	switch metric {
	case "p50", "p90", "p95", "p99":
		q, _ := strconv.ParseFloat(metric[1:], 64)
		return ms(s.LatencyHistogram().Quantile(q / 100))
	case "ttfb_p50", "ttfb_p90", "ttfb_p95", "ttfb_p99":
		q, _ := strconv.ParseFloat(metric[6:], 64)
		return ms(s.TTFBHistogram().Quantile(q / 100))
	case "max":
		return ms(s.LatencyHistogram().Max())
	case "mean":
		return ms(s.LatencyHistogram().Mean())
	case "error_rate":
		return float64(s.Failed) / float64(s.Requests)
	case "hit_ratio":
		return float64(s.Hits) / float64(s.Requests)
	case "requests":
		return float64(s.Requests)
	}
	return math.NaN()
}

func evalRun(r *Result, t Threshold, phases []string) Outcome {
	want := map[string]bool{}
	for _, p := range phases {
		want[p] = true
	}
	var sched, dropped, reqs, failed uint64
	for _, ph := range r.Phases {
		if len(want) > 0 && !want[ph.Name] {
			continue
		}
		sched += ph.Scheduled
		dropped += ph.Dropped
		for _, s := range ph.Series {
			reqs += s.Requests
			failed += s.Failed
		}
	}
	o := Outcome{Threshold: t, Text: t.Text, Region: "*", Class: "run"}
	switch t.Metric {
	case "dropped":
		o.Value = float64(dropped)
	case "dropped_rate":
		if sched == 0 {
			o.NoData = true
			return o
		}
		o.Value = float64(dropped) / float64(sched)
	case "error_rate":
		if reqs == 0 {
			o.NoData = true
			return o
		}
		o.Value = float64(failed) / float64(reqs)
	}
	o.Pass = compare(o.Value, t.Op, t.Value)
	return o
}

func compare(v float64, op string, limit float64) bool {
	switch op {
	case "<":
		return v < limit
	case "<=":
		return v <= limit
	case ">":
		return v > limit
	case ">=":
		return v >= limit
	case "==":
		return v == limit
	}
	return false
}
