package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/shtetl/zmanim-ops/internal/benchkit"
	"github.com/shtetl/zmanim-ops/internal/config"
)

// BenchOptions tune bench:loadgen.
type BenchOptions struct {
	Round  time.Duration // length of one measurement round (default 3 s)
	Rounds int           // rounds per variant, alternating plain and ext (default 12)
	Rate   float64       // open-model arrival rate of each round (default 1000 req/s)
	// CheckRate, when positive, also runs the extension at this open-model rate for
	// CheckFor and reports its dropped iterations (the 10x profile: 500 req/s).
	CheckRate float64
	CheckFor  time.Duration
}

// BenchResult is the outcome of bench:loadgen.
type BenchResult struct {
	PlainRPS, ExtRPS float64 // medians over the rounds
	// OverheadPct is the median of the rounds' paired overheads (each round's ext against
	// the same round's plain): a pair shares the machine's state of that moment, which the
	// medians of the two variants taken apart do not (on a busy machine they differed from
	// it by up to 8 points in either direction).
	OverheadPct float64
	// SpreadPct is the larger of the two variants' interquartile range of per-round rates, as
	// a percentage of its median: how much the rounds disagreed (benchkit.SpreadPct).
	SpreadPct float64
	// PairedPct are the per-round overheads, each ext round against the plain round just
	// before it (printed as a cross-check: drift between rounds cancels within a pair).
	PairedPct      []float64
	CheckScheduled uint64
	CheckDropped   uint64
	CheckP99       time.Duration
}

// BenchLoadgen measures the generator's maximum request rate on loopback against a trivial
// endpoint in a separate process (as CPU cost per request, see measure) that answers like a CloudFront edge hit, once plain (fixed URL, latency
// only: the engine's own cost) and once with the per-request work of the load test (request
// mix, region header, classification, per-region/class histograms, time windows). Variants
// alternate round by round and the median of each is compared, so that drift on a shared
// machine hits both alike. Rates are CPU-normalised (see measure); the wall-clock rate of
// each round is printed too. The last line written is
// `loadgen: plain_rps=A ext_rps=B overhead_pct=C spread_pct=D`.
func BenchLoadgen(ctx context.Context, o BenchOptions, w io.Writer) (BenchResult, error) {
	if o.Round <= 0 {
		o.Round = 3 * time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 12
	}
	if o.Rate <= 0 {
		o.Rate = 1000
	}
	srvURL, stop, err := startTrivialEndpoint(ctx)
	if err != nil {
		return BenchResult{}, err
	}
	defer stop()

	p, err := RepoPath(DefaultScenariosFile)
	if err != nil {
		return BenchResult{}, err
	}
	sf, err := LoadScenarioFile(p)
	if err != nil {
		return BenchResult{}, err
	}
	regions := []string{"us-east-1", "il-central-1"}
	mix, err := NewMix(sf.Mix, MixOptions{Target: srvURL, Regions: regions, RegionHeader: true, Token: "bench.token.x", HotRatio: -1})
	if err != nil {
		return BenchResult{}, err
	}
	plainURL := srvURL + "/api/zmanim?lat=31.768300&lon=35.213700&date=2026-12-01"
	plainSrc := SourceFunc(func(_ uint64, r *Request) { r.URL = plainURL })
	client := NewClient(256, 10*time.Second)

	// measure sends o.Rate requests per second for o.Round (open model, the same arrival
	// pattern for both variants) and returns the achieved rate and the CPU-normalised maximum
	// rate: cores divided by the generator's CPU time per request (the trivial endpoint runs in
	// its own process and is not counted). CPU per request is what the comparison uses: on a
	// shared machine other processes change wall-clock throughput from round to round by a
	// factor of two, but hardly what a request costs the generator.
	measure := func(ext bool) (float64, float64, error) {
		plan := Plan{Name: "bench", Client: client, MaxWorkers: 256, Stages: []Stage{Constant("bench", o.Rate, o.Round)}}
		if ext {
			plan.Source, plan.Regions, plan.Window = mix, regions, time.Second
		} else {
			plan.Source, plan.Plain = plainSrc, true
		}
		cpu0 := cpuTime()
		res, err := Run(ctx, plan)
		cpu := cpuTime() - cpu0
		if err != nil {
			return 0, 0, err
		}
		var n, failed uint64
		for _, s := range res.Totals() {
			n += s.Requests
			failed += s.Failed
		}
		if failed > 0 {
			return 0, 0, fmt.Errorf("bench loadgen: %d of %d requests failed on loopback", failed, n)
		}
		ph := res.Phases[0]
		if res.Dropped() > 0 {
			fmt.Fprintf(w, "  (%d of %d arrivals dropped: the machine could not keep %.0f req/s)\n", res.Dropped(), res.Scheduled(), o.Rate)
		}
		return float64(n) / ph.End.Sub(ph.Start).Seconds(), float64(n) / (cpu.Seconds() / float64(runtime.NumCPU())), nil
	}
	// Warm up connections and the runtime.
	if _, _, err := measure(true); err != nil {
		return BenchResult{}, err
	}
	// Plain and ext alternate round by round, and which of them goes first alternates too
	// (plain, ext, ext, plain, ...): whichever runs second in a pair pays for some of the
	// first one's leftovers (its garbage collected, its idle connections reused), which with a
	// fixed order showed as a few percent of "overhead" that was only the order. The two
	// Interleave sides are "first" and "second"; their samples are sorted back by variant.
	var wall [2]float64 // the round's wall-clock rates, by variant (plain, ext)
	var byVariant [2][]float64
	extFirst := func(round int) bool { return round%2 == 1 }
	position := func(second bool) func(context.Context, int) (float64, error) {
		return func(_ context.Context, round int) (float64, error) {
			ext := extFirst(round) != second
			sent, cpuRate, err := measure(ext)
			v := 0
			if ext {
				v = 1
			}
			wall[v] = sent
			byVariant[v] = append(byVariant[v], cpuRate)
			return cpuRate, err
		}
	}
	_, err = benchkit.Interleave(ctx, o.Rounds, []benchkit.Side{{Name: "first", Run: position(false)}, {Name: "second", Run: position(true)}},
		func(round int, side string, v float64) {
			if side != "second" {
				return
			}
			order := "plain first"
			if extFirst(round) {
				order = "ext first"
			}
			n := len(byVariant[1])
			fmt.Fprintf(w, "round %d (%s): plain %.0f req/s max (%.0f sent/s), ext %.0f req/s max (%.0f sent/s)\n", round+1, order, byVariant[0][n-1], wall[0], byVariant[1][n-1], wall[1])
		})
	if err != nil {
		return BenchResult{}, err
	}
	samples := byVariant
	r := BenchResult{PlainRPS: benchkit.Median(samples[0]), ExtRPS: benchkit.Median(samples[1])}
	r.SpreadPct = max(benchkit.SpreadPct(samples[0]), benchkit.SpreadPct(samples[1]))
	for i := range samples[1] {
		r.PairedPct = append(r.PairedPct, (samples[0][i]-samples[1][i])/samples[0][i]*100)
	}
	r.OverheadPct = benchkit.Median(r.PairedPct)
	fmt.Fprintf(w, "%d rounds of %s at %.0f req/s each side: plain %.0f-%.0f req/s max, ext %.0f-%.0f; per-round overhead median %.1f%% (quartiles %.1f%% to %.1f%%); overhead of the two medians %.1f%%\n",
		o.Rounds, o.Round, o.Rate, slices.Min(samples[0]), slices.Max(samples[0]), slices.Min(samples[1]), slices.Max(samples[1]),
		r.OverheadPct, benchkit.Quantile(r.PairedPct, 0.25), benchkit.Quantile(r.PairedPct, 0.75), (r.PlainRPS-r.ExtRPS)/r.PlainRPS*100)

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
	fmt.Fprintln(w, r.Line())
	return r, nil
}

// Line is the benchmark's last line.
func (r BenchResult) Line() string {
	return benchkit.Line("loadgen", benchkit.Float("plain_rps", r.PlainRPS, 0), benchkit.Float("ext_rps", r.ExtRPS, 0),
		benchkit.Float("overhead_pct", r.OverheadPct, 1), benchkit.Float("spread_pct", r.SpreadPct, 1))
}

// TrivialEdgeHandler answers like a CloudFront edge hit (a miss for private paths, which must
// never come from a cache) with a small JSON body: the endpoint of bench:loadgen.
func TrivialEdgeHandler() http.Handler {
	body := []byte(`{"sunrise":"06:12","sunset":"16:41"}`)
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h := rw.Header()
		h["Content-Type"] = []string{"application/json"}
		if strings.HasPrefix(r.URL.Path, "/api/publisher/") {
			h["X-Cache"] = []string{"Miss from cloudfront"}
		} else {
			h["X-Cache"] = []string{"Hit from cloudfront"}
			h["Age"] = []string{"12"}
		}
		h["X-Amz-Cf-Pop"] = []string{"IAD89-C1"}
		rw.Write(body)
	})
}

// startTrivialEndpoint runs the trivial endpoint in its own process (zops-loadgen trivial),
// so that the generator's CPU time, which the bench measures, excludes the server's.
func startTrivialEndpoint(ctx context.Context) (string, func(), error) {
	dir, err := os.MkdirTemp("", "zops-bench-loadgen-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "zops-loadgen")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/zops-loadgen")
	build.Dir = config.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build trivial endpoint: %w: %s", err, out)
	}
	cmd := exec.Command(bin, "trivial", "-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("start trivial endpoint: %w", err)
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") {
		stop()
		return "", nil, fmt.Errorf("start trivial endpoint: no address (%q, %v)", line, err)
	}
	return strings.TrimSpace(line), stop, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
