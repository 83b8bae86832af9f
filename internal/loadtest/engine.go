package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Stage is one phase of a run. In the open model (the default) requests arrive at a rate that
// goes linearly from StartRate to EndRate per second over Duration, whatever the response
// times: when no worker is free an arrival is dropped and counted, never delayed (a slow
// target must show up as dropped iterations, not as a silently lower rate). With VUs > 0 the
// stage is a closed model instead: VUs workers send back to back (used to find a maximum rate).
type Stage struct {
	Name      string        `json:"name"`
	Duration  time.Duration `json:"duration"`
	StartRate float64       `json:"start_rate"`
	EndRate   float64       `json:"end_rate"`
	VUs       int           `json:"vus,omitempty"`
}

// Constant is a stage at a constant arrival rate.
func Constant(name string, rate float64, d time.Duration) Stage {
	return Stage{Name: name, Duration: d, StartRate: rate, EndRate: rate}
}

// Ramp is a stage whose arrival rate changes linearly from `from` to `to` per second.
func Ramp(name string, from, to float64, d time.Duration) Stage {
	return Stage{Name: name, Duration: d, StartRate: from, EndRate: to}
}

// Request is one request to send, filled in by a Source. Header is shared between requests
// and must not be modified after the Source hands it out.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Kind   Kind
	Region int // index into Plan.Regions
}

// Source generates the requests of a run. Next is called concurrently from many workers and
// must be deterministic in iter (so runs are reproducible and need no shared random state).
type Source interface {
	Next(iter uint64, r *Request)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(iter uint64, r *Request)

// Next calls f.
func (f SourceFunc) Next(iter uint64, r *Request) { f(iter, r) }

// Plan describes a run.
type Plan struct {
	Name    string
	Target  string   // base URL, checked for reachability before the run (optional)
	Regions []string // region names; Request.Region indexes it (default: one region "local")
	Stages  []Stage
	Source  Source
	// Plain skips classification and tagging: every response is recorded, by latency only,
	// under the first region as class "uncached". It is the baseline of bench:loadgen.
	Plain bool
	// Client supplies the transport and the per-request timeout (default: NewClient sized to
	// MaxWorkers). Requests go straight to its Transport, as with NewClient's clients: no
	// redirect is followed and no cookie jar is used (see engine.do).
	Client       *http.Client
	PreAllocated int           // workers started up front (default 50, capped at MaxWorkers)
	MaxWorkers   int           // at most this many requests in flight (default 1000)
	Timeout      time.Duration // per request (default 10 s)
	// Window, when positive, also aggregates results per time window of this width
	// (Result.Windows), e.g. to see what a binary swap did second by second.
	Window time.Duration
	// Stop, when closed, ends the run gracefully before its stages are over: no new arrival
	// is scheduled, requests in flight finish and are recorded. Cancelling Run's context
	// instead cuts them short; those are counted as Phase.Cancelled, not as failures (the
	// caller ended them, not the target), but a caller that wants every request judged, such
	// as a test of a release under load, ends the load with Stop.
	Stop     <-chan struct{}
	Progress func(Progress) // called about once a second when set
}

// Progress is a snapshot for progress output.
type Progress struct {
	Elapsed   time.Duration
	Stage     string
	Scheduled uint64
	Completed uint64
	Failed    uint64
	Dropped   uint64
	InFlight  int64
}

// ErrUnreachable is returned when the plan's target does not accept connections.
var ErrUnreachable = errors.New("target unreachable")

var errBadHistogram = errors.New("histogram bucket index out of range")

type item struct {
	iter  uint64
	stage int32
	// due is when the pacer scheduled the arrival (zero in the closed model). Windows count
	// arrivals by due time, so their request counts follow the plan exactly even when the
	// machine is busy and a send happens a little late.
	due time.Time
}

type engine struct {
	plan    Plan
	client  *http.Client
	rt      http.RoundTripper // client.Transport (http.DefaultTransport when nil)
	timeout time.Duration     // client.Timeout, else the plan's
	ctx     context.Context
	start   time.Time
	work    chan item
	wg      sync.WaitGroup
	rec     *recorder
	workers int

	stop <-chan struct{} // Plan.Stop (nil: never)

	scheduled, completed, failed, dropped atomic.Uint64
	inFlight                              atomic.Int64
	stageName                             atomic.Value
}

// Run executes the plan and returns what it measured. It returns an error only when the run
// could not be carried out (bad plan, unreachable target); failed requests and missed
// thresholds are results, not errors. Cancelling ctx ends the run early with the results
// so far.
func Run(ctx context.Context, p Plan) (*Result, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if p.Target != "" {
		if err := CheckReachable(ctx, p.Target); err != nil {
			return nil, err
		}
	}
	e := &engine{plan: p, ctx: ctx, work: make(chan item), client: p.Client, stop: p.Stop}
	if e.client == nil {
		e.client = NewClient(p.MaxWorkers, p.Timeout)
	}
	e.rt, e.timeout = e.client.Transport, e.client.Timeout
	if e.rt == nil {
		e.rt = http.DefaultTransport
	}
	if e.timeout <= 0 {
		e.timeout = p.Timeout
	}
	e.rec = newRecorder(&e.plan)
	e.stageName.Store("")
	e.start = time.Now()
	e.rec.start = e.start

	stopProgress := e.progressLoop()
	for i := 0; i < p.PreAllocated; i++ {
		e.spawn(nil)
	}
	offset := time.Duration(0)
	for si := range p.Stages {
		if ctx.Err() != nil || e.stopped() {
			break
		}
		st := p.Stages[si]
		e.stageName.Store(st.Name)
		stageStart := e.start.Add(offset)
		e.rec.phases[si].start = time.Now()
		if st.VUs > 0 {
			e.closed(int32(si), st, stageStart)
		} else {
			e.open(int32(si), st, stageStart)
		}
		offset += st.Duration
		e.rec.phases[si].end = time.Now()
	}
	close(e.work)
	e.wg.Wait()
	stopProgress()
	return e.rec.result(time.Since(e.start)), nil
}

func (p *Plan) validate() error {
	var errs []error
	if len(p.Stages) == 0 {
		errs = append(errs, errors.New("plan has no stages"))
	}
	for i, s := range p.Stages {
		if s.Duration <= 0 {
			errs = append(errs, fmt.Errorf("stage %d (%q): duration must be positive", i+1, s.Name))
		}
		if s.StartRate < 0 || s.EndRate < 0 || math.IsNaN(s.StartRate) || math.IsNaN(s.EndRate) {
			errs = append(errs, fmt.Errorf("stage %d (%q): rates must not be negative", i+1, s.Name))
		}
		if s.VUs < 0 {
			errs = append(errs, fmt.Errorf("stage %d (%q): vus must not be negative", i+1, s.Name))
		}
	}
	if p.Source == nil {
		errs = append(errs, errors.New("plan has no request source"))
	}
	if len(p.Regions) == 0 {
		p.Regions = []string{"local"}
	}
	if p.MaxWorkers <= 0 {
		p.MaxWorkers = 1000
	}
	if p.PreAllocated <= 0 {
		p.PreAllocated = 50
	}
	if p.PreAllocated > p.MaxWorkers {
		p.PreAllocated = p.MaxWorkers
	}
	if p.Timeout <= 0 {
		p.Timeout = 10 * time.Second
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid load plan: %w", err)
	}
	return nil
}

// NewClient returns the HTTP client the engine uses by default: keep-alive connections sized
// for the worker pool, no transparent decompression (the body is discarded anyway).
func NewClient(maxConns int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// CheckReachable dials the target's host and port once.
func CheckReachable(ctx context.Context, target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("target %q is not an http(s) URL: set ZOPS_LOADTEST_TARGET to the edge's base URL, e.g. http://127.0.0.1:8443", target)
	}
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	d := net.Dialer{Timeout: 3 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("%w: %s: %v (is the local twin up? otherwise point ZOPS_LOADTEST_TARGET at a running edge)", ErrUnreachable, target, err)
	}
	return c.Close()
}

// open schedules arrivals for one stage. The n-th arrival (n = 1, 2, ...) is due when the
// integral of the linear rate reaches n, so the schedule is exact for constant rates and
// ramps alike and independent of how late the scheduler wakes up: a late wake-up sends the
// overdue arrivals at once rather than fewer of them.
func (e *engine) open(si int32, st Stage, stageStart time.Time) {
	D := st.Duration.Seconds()
	a := (st.EndRate - st.StartRate) / (2 * D)
	b := st.StartRate
	ph := e.rec.phases[si]
	for n := 1.0; ; n++ {
		var t float64
		if a == 0 {
			if b == 0 {
				e.sleepUntil(stageStart.Add(st.Duration))
				return
			}
			t = n / b
		} else {
			disc := b*b + 4*a*n
			if disc < 0 {
				break
			}
			t = (-b + math.Sqrt(disc)) / (2 * a)
		}
		if t >= D || t < 0 {
			break
		}
		due := stageStart.Add(time.Duration(t * float64(time.Second)))
		if !e.sleepUntil(due) {
			return
		}
		ph.scheduled.Add(1)
		it := item{iter: e.scheduled.Add(1), stage: si, due: due}
		select {
		case e.work <- it:
		default:
			if e.workers < e.plan.MaxWorkers {
				e.spawn(&it)
			} else {
				e.dropped.Add(1)
				ph.dropped.Add(1)
				e.rec.recordDropped(due)
			}
		}
	}
	e.sleepUntil(stageStart.Add(st.Duration))
}

// stopped reports whether Plan.Stop was closed.
func (e *engine) stopped() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

// sleepUntil waits for t; false when the context ended or the run was stopped.
func (e *engine) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return e.ctx.Err() == nil && !e.stopped()
	}
	if d < 2*time.Millisecond {
		time.Sleep(d)
		return e.ctx.Err() == nil && !e.stopped()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return !e.stopped()
	case <-e.ctx.Done():
		return false
	case <-e.stop:
		return false
	}
}

func (e *engine) closed(si int32, st Stage, stageStart time.Time) {
	end := stageStart.Add(st.Duration)
	ctx, cancel := context.WithDeadline(e.ctx, end)
	defer cancel()
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	ph := e.rec.phases[si]
	var wg sync.WaitGroup
	for v := 0; v < st.VUs; v++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var req Request
			for ctx.Err() == nil {
				n := e.scheduled.Add(1)
				ph.scheduled.Add(1)
				e.do(item{iter: n, stage: si}, &req)
			}
		}()
	}
	wg.Wait()
}

func (e *engine) spawn(first *item) {
	e.workers++
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		var req Request
		if first != nil {
			e.do(*first, &req)
		}
		for it := range e.work {
			e.do(it, &req)
		}
	}()
}

func (e *engine) do(it item, req *Request) {
	e.inFlight.Add(1)
	defer e.inFlight.Add(-1)
	e.plan.Source.Next(it.iter, req)
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	// The request goes to the transport directly rather than through http.Client.Do: Do
	// clones the header map of every request (for redirects, which a load test never
	// follows) and wraps it in redirect and cookie bookkeeping, per-request work that
	// bench:loadgen measured on the mix's requests (which carry region and auth headers).
	// The timeout is the same context deadline Do would set.
	ctx, cancel := context.WithTimeout(e.ctx, e.timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, method, req.URL, nil)
	if err != nil {
		e.failed.Add(1)
		e.completed.Add(1)
		e.rec.recordError(it.stage, req.Region, req.Kind, "bad request: "+err.Error(), windowTime(it))
		return
	}
	if req.Header != nil {
		hr.Header = req.Header
	}
	t0 := time.Now()
	resp, err := e.rt.RoundTrip(hr)
	if err != nil {
		if e.ctx.Err() != nil { // the caller ended the run: not the target's failure
			e.rec.recordCancelled(it.stage)
			e.completed.Add(1)
			return
		}
		e.failed.Add(1)
		e.completed.Add(1)
		e.rec.recordError(it.stage, req.Region, req.Kind, errorKind(err), windowTime(it))
		return
	}
	ttfb := time.Since(t0)
	_, cerr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	dur := time.Since(t0)
	if cerr != nil && e.ctx.Err() != nil {
		e.rec.recordCancelled(it.stage)
		e.completed.Add(1)
		return
	}
	failed := resp.StatusCode >= 400 || cerr != nil
	if e.plan.Plain {
		e.rec.recordPlain(it.stage, windowTimeOr(it, t0), dur, failed, resp.StatusCode)
	} else {
		c := Classify(req.Kind, resp.Header)
		if c.Leak {
			failed = true
		}
		e.rec.record(it.stage, req.Region, c, windowTimeOr(it, t0), ttfb, dur, failed, resp.StatusCode)
	}
	if failed {
		e.failed.Add(1)
	}
	e.completed.Add(1)
}

func windowTime(it item) time.Time { return windowTimeOr(it, time.Now()) }

func windowTimeOr(it item, t time.Time) time.Time {
	if it.due.IsZero() {
		return t
	}
	return it.due
}

func errorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout or cancelled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed (EOF)"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout or cancelled"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func (e *engine) progressLoop() func() {
	if e.plan.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				e.plan.Progress(Progress{
					Elapsed: time.Since(e.start), Stage: e.stageName.Load().(string),
					Scheduled: e.scheduled.Load(), Completed: e.completed.Load(),
					Failed: e.failed.Load(), Dropped: e.dropped.Load(), InFlight: e.inFlight.Load(),
				})
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// Steady is a plan that sends rate requests per second for d through the edge at target,
// cycling through paths (GET), with per-second windows: what a caller needs to watch an
// operation (a binary swap, a failover) under load. Responses are classified like any other
// run; with no paths it requests "/health".
func Steady(target string, rate float64, d time.Duration, paths ...string) Plan {
	if len(paths) == 0 {
		paths = []string{"/health"}
	}
	base := strings.TrimSuffix(target, "/")
	urls := make([]string, len(paths))
	kinds := make([]Kind, len(paths))
	for i, p := range paths {
		urls[i] = base + p
		switch {
		case strings.HasPrefix(p, "/api/publisher/"), strings.HasPrefix(p, "/api/admin/"):
			kinds[i] = KindPrivate
		case strings.HasPrefix(p, "/api/"), p == "/health":
			kinds[i] = KindAPI
		default:
			kinds[i] = KindFrontend
		}
	}
	src := SourceFunc(func(iter uint64, r *Request) {
		i := int(iter % uint64(len(urls)))
		r.URL, r.Kind = urls[i], kinds[i]
	})
	return Plan{Name: "steady", Target: target, Stages: []Stage{Constant("steady", rate, d)}, Source: src, Window: time.Second}
}

// ErrNoPage is returned when a frontend page of the mix is missing at the target: measuring
// 404s would say nothing about the latency targets.
var ErrNoPage = errors.New("frontend page missing at the target")

// CheckPages asks the target once for each frontend page of the mix (their paths have no
// parameters) before any load is sent, and fails on a 404, naming the page and the fix.
func CheckPages(ctx context.Context, hc *http.Client, target string, eps []EndpointSpec) error {
	var missing []string
	for _, ep := range eps {
		if ep.Kind != "frontend" {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(target, "/")+ep.Path, nil)
		if err != nil {
			return fmt.Errorf("frontend page %s: %w", ep.Path, err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrUnreachable, target, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			missing = append(missing, ep.Path)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s answered 404 for %s: deploy the site first (`go tool mage site:sync DIR`, e.g. examples/site/out on the twin) or take the pages out of the mix in %s",
			ErrNoPage, target, strings.Join(missing, ", "), DefaultScenariosFile)
	}
	return nil
}
