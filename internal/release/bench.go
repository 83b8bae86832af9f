package release

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shtetl/zmanim-ops/internal/benchkit"
	"github.com/shtetl/zmanim-ops/internal/loadtest"
	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// BenchRun is what one release under load measured.
type BenchRun struct {
	Version     string
	Failed      uint64        // failed requests (transport errors, status >= 400) over the whole run
	Dropped     uint64        // arrivals the generator could not send (no free worker)
	Requests    uint64        // responses plus transport errors
	P99Steady   time.Duration // p99 before the release started
	P99Swap     time.Duration // p99 from the deploy step's start to 1 s after its end
	P99Release  time.Duration // p99 over the whole release, build to retention (the twin shares its CPU with the tooling)
	Seconds     float64       // the whole (warm) release, build to deploy
	SwapWindows int
	steady      *loadtest.Histogram
}

// BenchResult is what bench:release measured over its runs: the worst of them, and the
// steady-state p99 of all their steady windows together.
type BenchResult struct {
	Runs         []BenchRun
	Failed       uint64        // over all runs
	P99Steady    time.Duration // all runs' steady windows together
	P99SwapWorst time.Duration // the largest swap p99 of a run
	Seconds      float64       // the slowest release
}

// Line is the benchmark's last line.
func (b BenchResult) Line() string {
	return benchkit.Line("release", benchkit.Int("runs", len(b.Runs)), benchkit.Int("failed_requests", b.Failed),
		benchkit.Float("p99_ms_steady", ms(b.P99Steady), 1), benchkit.Float("p99_ms_swap_worst", ms(b.P99SwapWorst), 1),
		benchkit.Float("seconds", b.Seconds, 1))
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

// BenchOptions configure bench:release.
type BenchOptions struct {
	Release Options
	EdgeURL string        // the twin's edge
	RPS     float64       // config load.TargetRPS() (10x expected)
	Runs    int           // releases under load (default 5)
	Steady  time.Duration // load before each release (default 8 s)
	After   time.Duration // load after each release (default 4 s)
	Out     io.Writer
}

// BenchRelease releases once without load to warm the build cache, then Runs times sends RPS
// through the edge, releases in the middle of the load, and compares the latency before the
// release with the latency around the swap. Requests alternate between /health (never
// cached) and /api/zmanim with a query that varies per request (a cache miss at the edge),
// so every request reaches the box. The load ends gracefully (loadtest Plan.Stop) so that
// every request sent is judged. The result is the worst run; the baseline (the spec's path
// 2, a plain restart) runs once at the end.
func BenchRelease(ctx context.Context, o BenchOptions) (BenchResult, error) {
	var res BenchResult
	if o.Runs <= 0 {
		o.Runs = 5
	}
	if o.Steady <= 0 {
		o.Steady = 8 * time.Second
	}
	if o.After <= 0 {
		o.After = 4 * time.Second
	}
	base := o.Release.Version
	if base == "" {
		src, err := ReadSource(ctx, o.Release.Root, "")
		if err != nil {
			return res, err
		}
		base = strings.SplitN(src.Version, "-dirty", 2)[0]
	}
	stamp := time.Now().UTC().Format("20060102T150405")
	warm := o.Release
	warm.Version = base + "-bench." + stamp + ".0"
	warm.Out = prefixed(o.Out, "  warm-up | ")
	t0 := time.Now()
	if _, err := Release(ctx, warm); err != nil {
		return res, fmt.Errorf("warm-up release: %w", err)
	}
	fmt.Fprintf(o.Out, "warm-up release %s took %.1f s (cold build cache on a fresh machine)\n", warm.Version, time.Since(t0).Seconds())

	steadyAll := &loadtest.Histogram{}
	last := warm.Version
	for i := 1; i <= o.Runs; i++ {
		rel := o.Release
		rel.Version = fmt.Sprintf("%s-bench.%s.%d", base, stamp, i)
		rel.Out = prefixed(o.Out, fmt.Sprintf("  run %d | ", i))
		run, err := benchOneNoGC(ctx, o, rel, i)
		if err != nil {
			return res, fmt.Errorf("run %d: %w", i, err)
		}
		last = rel.Version
		steadyAll.Merge(run.steady)
		res.Runs = append(res.Runs, run)
		res.Failed += run.Failed
		res.P99SwapWorst = max(res.P99SwapWorst, run.P99Swap)
		res.Seconds = max(res.Seconds, run.Seconds)
		ratio := 0.0
		if run.P99Steady > 0 {
			ratio = float64(run.P99Swap) / float64(run.P99Steady)
		}
		fmt.Fprintf(o.Out, "run %d: %s: %d requests, %d failed, %d dropped; p99 steady %.1f ms, swap %.1f ms (%.2fx, %d windows), whole release %.1f ms; release %.1f s\n",
			i, rel.Version, run.Requests, run.Failed, run.Dropped, ms(run.P99Steady), ms(run.P99Swap), ratio, run.SwapWindows, ms(run.P99Release), run.Seconds)
	}
	res.P99Steady = steadyAll.Quantile(0.99)
	worst := 0.0
	if res.P99Steady > 0 {
		worst = float64(res.P99SwapWorst) / float64(res.P99Steady)
	}
	fmt.Fprintf(o.Out, "%d runs: %d failed requests; steady p99 %.1f ms (%d samples), worst swap p99 %.1f ms (%.2fx steady; goal <= 2x), slowest release %.1f s\n",
		len(res.Runs), res.Failed, ms(res.P99Steady), steadyAll.Count(), ms(res.P99SwapWorst), worst, res.Seconds)

	// Baseline, same binaries and load, straight at the API's own port: a plain restart.
	rels := filepath.Join(o.Release.Env.Twin.StateDir, "box", "opt", "zmanim", "releases")
	envFile := filepath.Join(o.Release.Env.Twin.StateDir, "box", "etc", "zmanim", "api.env")
	bl, err := BenchBaseline(ctx, filepath.Join(rels, warm.Version, o.Release.Env.Release.Binary), filepath.Join(rels, last, o.Release.Env.Release.Binary), envFile, o.RPS)
	if err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}
	fmt.Fprintf(o.Out, "baseline (spec path 2: restart the API on its own port): failed_requests=%d of %d, gap_ms=%.0f\n", bl.Failed, bl.Requests, ms(bl.Gap))
	return res, nil
}

// benchOneNoGC is benchOne with this process's garbage collector paused (up to a 4 GiB heap)
// and a collection after it. The load generator shares this process with the release
// tooling, whose garbage (the binaries it builds, hashes and uploads) brought a collection
// into the swap window in most runs: it stalls the generator's workers, which then report
// latency no user sees (with GOGC=off the worst swap p99 fell from 2.7x to 1.25x of steady).
func benchOneNoGC(ctx context.Context, o BenchOptions, rel Options, runIdx int) (BenchRun, error) {
	runtime.GC()
	defer runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(4 << 30))
	return benchOne(ctx, o, rel, runIdx)
}

// benchOne is one release under load.
func benchOne(ctx context.Context, o BenchOptions, rel Options, runIdx int) (BenchRun, error) {
	run := BenchRun{Version: rel.Version, steady: &loadtest.Histogram{}}
	stop := make(chan struct{})
	plan := loadtest.Plan{
		Name: "bench:release", Target: o.EdgeURL, Plain: true, Window: 10 * time.Millisecond, Stop: stop,
		Stages: []loadtest.Stage{loadtest.Constant("steady", o.RPS, o.Steady+o.After+5*time.Minute)}, // Stop ends it
		Source: loadtest.SourceFunc(func(iter uint64, r *loadtest.Request) {
			r.Method = "GET"
			if iter%2 == 0 {
				r.URL = o.EdgeURL + "/health"
				return
			}
			// Latitudes within ±60: nearer the poles some December days have no sunrise and
			// the API answers 422, which is correct but not what this bench measures.
			lat := float64(iter%1200)/10 - 60
			lon := float64((iter*7919)%3600)/10 - 179.9
			// Each run its own year: no run finds the previous run's answers in the edge cache.
			r.URL = fmt.Sprintf("%s/api/zmanim?lat=%.1f&lon=%.1f&date=%d-12-%02d", o.EdgeURL, lat, lon, 2030+runIdx, 1+iter%28)
		}),
		MaxWorkers: 2000, PreAllocated: 200, Timeout: 10 * time.Second,
	}
	slow := &slowTracer{next: loadtest.NewClient(2000, 10*time.Second).Transport}
	plan.Client = &http.Client{Transport: slow, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	type loadOut struct {
		r   *loadtest.Result
		err error
	}
	done := make(chan loadOut, 1)
	loadStart := time.Now()
	go func() { r, err := loadtest.Run(ctx, plan); done <- loadOut{r, err} }()
	fmt.Fprintf(o.Out, "load: %.0f req/s through %s; releasing %s after %s\n", o.RPS, o.EdgeURL, rel.Version, o.Steady)
	select {
	case <-time.After(o.Steady):
	case lo := <-done:
		return run, fmt.Errorf("load generator stopped early: %v", lo.err)
	}
	relStart := time.Now()
	rep, relErr := Release(ctx, rel)
	relEnd := time.Now()
	run.Seconds = relEnd.Sub(relStart).Seconds()
	var swapFrom, swapTo time.Time
	if rep != nil {
		for _, s := range rep.Summary.Steps {
			if strings.HasPrefix(s.Step, "deploy to ") && !s.Start.IsZero() {
				swapFrom, swapTo = s.Start, s.Start.Add(s.Duration).Add(time.Second)
			}
		}
	}
	var timeline []string
	if rep != nil && !swapFrom.IsZero() {
		for _, s := range rep.Summary.Steps {
			if !s.Start.IsZero() && s.Start.Add(s.Duration).After(swapFrom.Add(-time.Second)) {
				name, _, _ := strings.Cut(s.Step, " ")
				timeline = append(timeline, fmt.Sprintf("%s %+.2f..%+.2fs", name, s.Start.Sub(swapFrom).Seconds(), s.Start.Add(s.Duration).Sub(swapFrom).Seconds()))
			}
		}
		timeline = append(timeline, fmt.Sprintf("done %+.2fs", relEnd.Sub(swapFrom).Seconds()))
	}
	select {
	case <-time.After(o.After):
	case <-ctx.Done():
	}
	close(stop)
	lo := <-done
	if lo.err != nil {
		return run, fmt.Errorf("load: %w", lo.err)
	}
	if relErr != nil {
		return run, fmt.Errorf("release under load: %w", relErr)
	}
	if swapFrom.IsZero() {
		return run, fmt.Errorf("release under load: no deploy step timing")
	}
	// Windows are 10 ms wide so that the swap period is the deploy step to within 5 ms: a
	// window counts where its middle falls. The trace groups them by 100 ms.
	swap, whole := &loadtest.Histogram{}, &loadtest.Histogram{}
	var failedAt []string
	const group = 100 * time.Millisecond
	trace := map[int]*loadtest.Histogram{}
	for _, w := range lo.r.Windows {
		if w.Failed > 0 {
			failedAt = append(failedAt, fmt.Sprintf("%+.2fs:%d", w.Start.Sub(relStart).Seconds(), w.Failed))
		}
		run.Failed += w.Failed
		run.Requests += w.Requests
		h, err := loadtest.HistogramFromData(w.Latency)
		if err != nil || h == nil {
			continue
		}
		mid := w.Start.Add(plan.Window / 2)
		if mid.After(swapFrom.Add(-time.Second)) && mid.Before(swapTo.Add(time.Second)) {
			g := int(math.Floor(float64(mid.Sub(swapFrom)) / float64(group)))
			if trace[g] == nil {
				trace[g] = &loadtest.Histogram{}
			}
			trace[g].Merge(h)
		}
		if !mid.Before(relStart) && mid.Before(relEnd) {
			whole.Merge(h)
		}
		switch {
		case w.Start.After(loadStart.Add(time.Second)) && w.Start.Add(plan.Window).Before(relStart):
			run.steady.Merge(h)
		case !mid.Before(swapFrom) && mid.Before(swapTo):
			swap.Merge(h)
			run.SwapWindows++
		}
	}
	groups := make([]int, 0, len(trace))
	for g := range trace {
		groups = append(groups, g)
	}
	sort.Ints(groups)
	var swapTrace []string
	for _, g := range groups {
		swapTrace = append(swapTrace, fmt.Sprintf("%+.1fs:%.0f", (time.Duration(g)*group).Seconds(), ms(trace[g].Quantile(0.99))))
	}
	run.P99Release = whole.Quantile(0.99)
	run.Dropped = lo.r.Dropped()
	var errKinds []string
	for _, p := range lo.r.Phases {
		for _, e := range p.Errors {
			errKinds = append(errKinds, fmt.Sprintf("%s=%d", e.Kind, e.Count))
		}
	}
	if len(errKinds) > 0 {
		fmt.Fprintf(o.Out, "load: errors %v\n", errKinds)
	}
	fmt.Fprintf(o.Out, "load: p99 ms per %s around the deploy step (seconds from its start, which is %+.2fs into the release): %s\n",
		group, swapFrom.Sub(relStart).Seconds(), strings.Join(swapTrace, " "))
	fmt.Fprintf(o.Out, "load: release steps (seconds from the deploy step's start): %s\n", strings.Join(timeline, ", "))
	fmt.Fprintf(o.Out, "load: slowest requests from the deploy step to 1 s after it (sent at seconds from its start): %s\n", slow.around(swapFrom, swapFrom, swapTo, 12))
	if len(failedAt) > 0 {
		fmt.Fprintf(o.Out, "load: failures by window (seconds from the release start): %s\n", strings.Join(failedAt, " "))
	}
	run.P99Steady, run.P99Swap = run.steady.Quantile(0.99), swap.Quantile(0.99)
	return run, nil
}

// prefixed writes each line of output with a prefix.
func prefixed(w io.Writer, prefix string) io.Writer {
	if w == nil {
		return io.Discard
	}
	return &prefixWriter{w: w, prefix: prefix, bol: true}
}

type prefixWriter struct {
	w      io.Writer
	prefix string
	bol    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, c := range b {
		if p.bol {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
			p.bol = false
		}
		if _, err := p.w.Write([]byte{c}); err != nil {
			return 0, err
		}
		if c == '\n' {
			p.bol = true
		}
	}
	return len(b), nil
}

// Baseline is the spec's code-update path 2 measured the same way: the API binds its own
// port (no socket held across processes) and a release restarts it — stop the old process,
// start the new one — while the same load hits the port directly.
type Baseline struct {
	Failed   uint64
	Requests uint64
	Gap      time.Duration // from stopping the old process to the new one answering /health
}

// BenchBaseline restarts from binary a to binary b under rps for a few seconds.
func BenchBaseline(ctx context.Context, a, b, envFile string, rps float64) (Baseline, error) {
	var res Baseline
	all, err := onbox.ReadEnvFile(envFile)
	if err != nil {
		return res, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	addr := ln.Addr().String()
	ln.Close()
	env := []string{"PATH=/usr/bin:/bin", "ZMANIM_LISTEN=" + addr}
	for k, v := range all {
		if k != "ZMANIM_ORIGIN_VERIFY_SECRET" && k != "ZMANIM_FAIL_IF_VERSION" {
			env = append(env, k+"="+v)
		}
	}
	url := "http://" + addr
	hc := &http.Client{Timeout: 2 * time.Second}
	start := func(bin string) (*exec.Cmd, error) {
		cmd := exec.Command(bin, "serve")
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if _, code, err := onbox.GetHealth(ctx, hc, url+"/health", nil); err == nil && code == 200 {
				return cmd, nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("baseline: %s did not answer /health on %s", bin, addr)
	}
	old, err := start(a)
	if err != nil {
		return res, err
	}
	lctx, stop := context.WithCancel(ctx)
	done := make(chan *loadtest.Result, 1)
	go func() {
		r, _ := loadtest.Run(lctx, loadtest.Plan{Name: "baseline", Plain: true, Stages: []loadtest.Stage{loadtest.Constant("steady", rps, time.Minute)},
			Source: loadtest.SourceFunc(func(i uint64, r *loadtest.Request) { r.Method, r.URL = "GET", fmt.Sprintf("%s/health?i=%d", url, i) })})
		done <- r
	}()
	time.Sleep(2 * time.Second)
	t0 := time.Now()
	_ = old.Process.Signal(syscall.SIGTERM)
	_ = old.Wait()
	nw, err := start(b)
	res.Gap = time.Since(t0)
	time.Sleep(2 * time.Second)
	stop()
	r := <-done
	if nw != nil {
		_ = nw.Process.Signal(syscall.SIGTERM)
		_ = nw.Wait()
	}
	if err != nil {
		return res, err
	}
	for _, s := range r.Totals() {
		res.Requests += s.Requests
		res.Failed += s.Failed
	}
	return res, nil
}

// slowTracer remembers when each request was sent and how long it took, so that a run can
// name its slowest requests around the deploy step (which phase of the release they fell in).
type slowTracer struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []tracedRequest
}

type tracedRequest struct {
	sent time.Time
	took time.Duration
	path string
	err  bool
}

func (t *slowTracer) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	took := time.Since(start)
	t.mu.Lock()
	t.reqs = append(t.reqs, tracedRequest{sent: start, took: took, path: r.URL.Path, err: err != nil || (resp != nil && resp.StatusCode >= 400)})
	t.mu.Unlock()
	return resp, err
}

// around lists the n slowest requests sent between from and to, with their send time
// relative to origin.
func (t *slowTracer) around(origin, from, to time.Time, n int) string {
	t.mu.Lock()
	var in []tracedRequest
	for _, r := range t.reqs {
		if !r.sent.Before(from) && r.sent.Before(to) {
			in = append(in, r)
		}
	}
	t.mu.Unlock()
	sort.Slice(in, func(i, j int) bool { return in[i].took > in[j].took })
	var parts []string
	for _, r := range in[:min(n, len(in))] {
		mark := ""
		if r.err {
			mark = " FAILED"
		}
		parts = append(parts, fmt.Sprintf("%+.3fs %s %.1fms%s", r.sent.Sub(origin).Seconds(), r.path, ms(r.took), mark))
	}
	return strings.Join(parts, ", ")
}
