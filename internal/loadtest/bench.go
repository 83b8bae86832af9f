package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"time"
)

// BenchOptions tune bench:loadgen.
type BenchOptions struct {
	Round  time.Duration // length of one measurement round (default 4 s)
	Rounds int           // rounds per variant, alternating plain and ext (default 3)
	VUs    int           // closed-model workers (default 32)
	// CheckRate, when positive, also runs the extension at this open-model rate for
	// CheckFor and reports its dropped iterations (the 10x profile: 500 req/s).
	CheckRate float64
	CheckFor  time.Duration
}

// BenchResult is the outcome of bench:loadgen.
type BenchResult struct {
	PlainRPS, ExtRPS float64
	OverheadPct      float64
	CheckScheduled   uint64
	CheckDropped     uint64
	CheckP99         time.Duration
}

// BenchLoadgen measures the generator's maximum request rate on loopback against a trivial
// in-process endpoint that answers like a CloudFront edge hit, once plain (fixed URL, latency
// only: the engine's own cost) and once with the per-request work of the load test (request
// mix, region header, classification, per-region/class histograms, time windows). Variants
// alternate round by round and the median of each is compared, so that drift on a shared
// machine hits both alike. The last line written is
// `loadgen: plain_rps=A ext_rps=B overhead_pct=C`.
func BenchLoadgen(ctx context.Context, o BenchOptions, w io.Writer) (BenchResult, error) {
	if o.Round <= 0 {
		o.Round = 4 * time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.VUs <= 0 {
		o.VUs = 32
	}
	body := []byte(`{"sunrise":"06:12","sunset":"16:41"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h := rw.Header()
		h["Content-Type"] = []string{"application/json"}
		h["X-Cache"] = []string{"Hit from cloudfront"}
		h["Age"] = []string{"12"}
		h["X-Amz-Cf-Pop"] = []string{"IAD89-C1"}
		rw.Write(body)
	}))
	defer srv.Close()

	p, err := RepoPath(DefaultScenariosFile)
	if err != nil {
		return BenchResult{}, err
	}
	sf, err := LoadScenarioFile(p)
	if err != nil {
		return BenchResult{}, err
	}
	regions := []string{"us-east-1", "il-central-1"}
	mix, err := NewMix(sf.Mix, MixOptions{Target: srv.URL, Regions: regions, RegionHeader: true, Token: "bench.token.x", HotRatio: -1})
	if err != nil {
		return BenchResult{}, err
	}
	plainURL := srv.URL + "/api/zmanim?lat=31.768300&lon=35.213700&date=2026-12-01"
	plainSrc := SourceFunc(func(_ uint64, r *Request) { r.URL = plainURL })
	client := NewClient(o.VUs*2, 10*time.Second)

	measure := func(ext bool) (float64, error) {
		plan := Plan{Name: "bench", Client: client, Stages: []Stage{{Name: "max", Duration: o.Round, VUs: o.VUs}}}
		if ext {
			plan.Source, plan.Regions, plan.Window = mix, regions, time.Second
		} else {
			plan.Source, plan.Plain = plainSrc, true
		}
		res, err := Run(ctx, plan)
		if err != nil {
			return 0, err
		}
		var n, failed uint64
		for _, s := range res.Totals() {
			n += s.Requests
			failed += s.Failed
		}
		if failed > 0 {
			return 0, fmt.Errorf("bench loadgen: %d of %d requests failed on loopback", failed, n)
		}
		ph := res.Phases[0]
		return float64(n) / ph.End.Sub(ph.Start).Seconds(), nil
	}
	// Warm up connections and the runtime.
	if _, err := measure(true); err != nil {
		return BenchResult{}, err
	}
	var plain, ext []float64
	for i := 0; i < o.Rounds; i++ {
		a, err := measure(false)
		if err != nil {
			return BenchResult{}, err
		}
		b, err := measure(true)
		if err != nil {
			return BenchResult{}, err
		}
		plain, ext = append(plain, a), append(ext, b)
		fmt.Fprintf(w, "round %d: plain %.0f req/s, ext %.0f req/s\n", i+1, a, b)
	}
	r := BenchResult{PlainRPS: median(plain), ExtRPS: median(ext)}
	r.OverheadPct = (r.PlainRPS - r.ExtRPS) / r.PlainRPS * 100

	if o.CheckRate > 0 {
		if o.CheckFor <= 0 {
			o.CheckFor = 10 * time.Second
		}
		res, err := Run(ctx, Plan{Name: "check", Client: client, Source: mix, Regions: regions, Window: time.Second,
			Stages: []Stage{Constant("check", o.CheckRate, o.CheckFor)}})
		if err != nil {
			return r, err
		}
		r.CheckScheduled, r.CheckDropped = res.Scheduled(), res.Dropped()
		var all Histogram
		for _, s := range res.Totals() {
			all.Merge(s.LatencyHistogram())
		}
		r.CheckP99 = all.Quantile(0.99)
		fmt.Fprintf(w, "open model %.0f req/s for %s with the extension: %d scheduled, %d dropped, p99 %s\n",
			o.CheckRate, o.CheckFor, r.CheckScheduled, r.CheckDropped, r.CheckP99)
	}
	fmt.Fprintf(w, "loadgen: plain_rps=%.0f ext_rps=%.0f overhead_pct=%.1f\n", r.PlainRPS, r.ExtRPS, r.OverheadPct)
	return r, nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
