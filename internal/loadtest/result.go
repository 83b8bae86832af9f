package loadtest

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what a run measured. It is JSON-serialisable (histograms included) so that the
// results of regional runners can be merged exactly.
type Result struct {
	Name     string        `json:"name"`
	Target   string        `json:"target,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Regions  []string      `json:"regions"`
	Phases   []Phase       `json:"phases"`
	Windows  []Window      `json:"windows,omitempty"`
}

// Phase is the outcome of one stage.
type Phase struct {
	Name      string    `json:"name"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	StartRate float64   `json:"start_rate"`
	EndRate   float64   `json:"end_rate"`
	Scheduled uint64    `json:"scheduled"` // arrivals due in this stage
	Dropped   uint64    `json:"dropped"`   // arrivals that found no free worker
	// Cancelled are requests cut short by the caller cancelling the run: neither requests
	// nor failures of any series.
	Cancelled uint64        `json:"cancelled,omitempty"`
	Errors    []ErrorCount  `json:"errors,omitempty"`
	Series    []*Series     `json:"series"`
	Planned   time.Duration `json:"planned"`
}

// Series is the latency and outcome of one region and class.
type Series struct {
	Region   string            `json:"region"`
	Class    string            `json:"class"`
	Requests uint64            `json:"requests"` // responses plus transport errors
	Failed   uint64            `json:"failed"`   // transport errors, status >= 400, private responses from a cache
	Hits     uint64            `json:"hits"`     // answered by a cache tier (edge or shield)
	Leaks    uint64            `json:"leaks"`    // private responses served from a cache
	Pops     map[string]uint64 `json:"pops,omitempty"`
	Status   map[int]uint64    `json:"status,omitempty"`
	Latency  HistogramData     `json:"latency"` // request start to end of body
	TTFB     HistogramData     `json:"ttfb"`    // request start to response headers
	lat      *Histogram        // live form of Latency
	ttfb     *Histogram        // live form of TTFB
}

// Window is the aggregate of all regions and classes over one time window.
type Window struct {
	Start    time.Time     `json:"start"`
	Requests uint64        `json:"requests"` // requests sent in the window (responses and transport errors)
	Failed   uint64        `json:"failed"`
	Dropped  uint64        `json:"dropped"` // arrivals in the window that found no free worker
	P50      time.Duration `json:"p50"`
	P95      time.Duration `json:"p95"`
	P99      time.Duration `json:"p99"`
	Max      time.Duration `json:"max"`
	Latency  HistogramData `json:"latency"`
}

// ErrorCount counts one kind of failure.
type ErrorCount struct {
	Kind  string `json:"kind"`
	Count uint64 `json:"count"`
}

// LatencyHistogram returns the live latency histogram (rebuilt from data after decoding).
func (s *Series) LatencyHistogram() *Histogram {
	if s.lat == nil {
		s.lat, _ = HistogramFromData(s.Latency)
		if s.lat == nil {
			s.lat = &Histogram{}
		}
	}
	return s.lat
}

// TTFBHistogram returns the live time-to-first-byte histogram.
func (s *Series) TTFBHistogram() *Histogram {
	if s.ttfb == nil {
		s.ttfb, _ = HistogramFromData(s.TTFB)
		if s.ttfb == nil {
			s.ttfb = &Histogram{}
		}
	}
	return s.ttfb
}

func (s *Series) merge(o *Series) {
	s.Requests += o.Requests
	s.Failed += o.Failed
	s.Hits += o.Hits
	s.Leaks += o.Leaks
	for k, v := range o.Pops {
		if s.Pops == nil {
			s.Pops = map[string]uint64{}
		}
		s.Pops[k] += v
	}
	for k, v := range o.Status {
		if s.Status == nil {
			s.Status = map[int]uint64{}
		}
		s.Status[k] += v
	}
	s.LatencyHistogram().Merge(o.LatencyHistogram())
	s.TTFBHistogram().Merge(o.TTFBHistogram())
	s.Latency = s.lat.Data()
	s.TTFB = s.ttfb.Data()
}

// Totals merges a result's phases into one series per region and class, optionally only the
// named phases (all when none are given).
func (r *Result) Totals(phases ...string) []*Series {
	want := map[string]bool{}
	for _, p := range phases {
		want[p] = true
	}
	idx := map[[2]string]*Series{}
	var out []*Series
	for _, ph := range r.Phases {
		if len(want) > 0 && !want[ph.Name] {
			continue
		}
		for _, s := range ph.Series {
			k := [2]string{s.Region, s.Class}
			t := idx[k]
			if t == nil {
				t = &Series{Region: s.Region, Class: s.Class}
				idx[k] = t
				out = append(out, t)
			}
			t.merge(s)
		}
	}
	sortSeries(out, r.Regions)
	return out
}

// Dropped is the number of dropped iterations over all phases.
func (r *Result) Dropped() uint64 {
	var n uint64
	for _, p := range r.Phases {
		n += p.Dropped
	}
	return n
}

// Scheduled is the number of arrivals over all phases.
func (r *Result) Scheduled() uint64 {
	var n uint64
	for _, p := range r.Phases {
		n += p.Scheduled
	}
	return n
}

func sortSeries(ss []*Series, regions []string) {
	ri := map[string]int{}
	for i, r := range regions {
		ri[r] = i
	}
	ci := func(c string) int {
		if k, ok := ParseClass(c); ok {
			return int(k)
		}
		return 99
	}
	sort.SliceStable(ss, func(i, j int) bool {
		a, b := ss[i], ss[j]
		if ri[a.Region] != ri[b.Region] {
			return ri[a.Region] < ri[b.Region]
		}
		return ci(a.Class) < ci(b.Class)
	})
}

// recorder collects observations. One mutex guards it: recording is a few hundred
// nanoseconds against tens of microseconds for the request itself, and bench:loadgen
// measures what it costs.
type recorder struct {
	plan    *Plan
	start   time.Time
	mu      sync.Mutex
	phases  []*phaseRec
	windows []*Window
	winHist []*Histogram
}

type phaseRec struct {
	start, end                    time.Time
	scheduled, dropped, cancelled atomic.Uint64
	series                        []*Series // [region*numClasses+class], allocated on first use
	errors                        map[string]uint64
}

const maxErrorKinds = 16

func newRecorder(p *Plan) *recorder {
	r := &recorder{plan: p}
	for range p.Stages {
		r.phases = append(r.phases, &phaseRec{series: make([]*Series, len(p.Regions)*int(numClasses))})
	}
	return r
}

func (r *recorder) series(ph *phaseRec, region int, c Class) *Series {
	if region < 0 || region >= len(r.plan.Regions) {
		region = 0
	}
	i := region*int(numClasses) + int(c)
	s := ph.series[i]
	if s == nil {
		s = &Series{Region: r.plan.Regions[region], Class: c.String(), lat: &Histogram{}, ttfb: &Histogram{}}
		ph.series[i] = s
	}
	return s
}

func (r *recorder) windowAt(t time.Time) int {
	w := r.plan.Window
	if w <= 0 {
		return -1
	}
	i := int(t.Sub(r.start) / w)
	if i < 0 {
		i = 0
	}
	for len(r.windows) <= i {
		r.windows = append(r.windows, &Window{Start: r.start.Add(time.Duration(len(r.windows)) * w)})
		r.winHist = append(r.winHist, &Histogram{})
	}
	return i
}

func (r *recorder) recordDropped(due time.Time) {
	if r.plan.Window <= 0 {
		return
	}
	r.mu.Lock()
	r.windows[r.windowAt(due)].Dropped++
	r.mu.Unlock()
}

func (r *recorder) window(t time.Time, d time.Duration, failed bool) {
	i := r.windowAt(t)
	if i < 0 {
		return
	}
	r.windows[i].Requests++
	if failed {
		r.windows[i].Failed++
	}
	if d >= 0 {
		r.winHist[i].Record(d)
	}
}

func (r *recorder) recordPlain(stage int32, t0 time.Time, d time.Duration, failed bool, status int) {
	r.mu.Lock()
	s := r.series(r.phases[stage], 0, ClassUncached)
	s.Requests++
	if failed {
		s.Failed++
		if status >= 400 { // which answer failed, for the report (rare: no cost per request)
			if s.Status == nil {
				s.Status = map[int]uint64{}
			}
			s.Status[status]++
		}
	}
	s.lat.Record(d)
	r.window(t0, d, failed)
	r.mu.Unlock()
}

func (r *recorder) record(stage int32, region int, c Classification, t0 time.Time, ttfb, d time.Duration, failed bool, status int) {
	r.mu.Lock()
	s := r.series(r.phases[stage], region, c.Class)
	s.Requests++
	if failed {
		s.Failed++
	}
	if c.Hit {
		s.Hits++
	}
	if c.Leak {
		s.Leaks++
	}
	if c.Pop != "" {
		if s.Pops == nil {
			s.Pops = map[string]uint64{}
		}
		s.Pops[c.Pop]++
	}
	if status >= 400 {
		if s.Status == nil {
			s.Status = map[int]uint64{}
		}
		s.Status[status]++
	}
	s.lat.Record(d)
	s.ttfb.Record(ttfb)
	r.window(t0, d, failed)
	r.mu.Unlock()
}

// recordCancelled counts a request the caller's cancellation cut short.
func (r *recorder) recordCancelled(stage int32) {
	r.phases[stage].cancelled.Add(1)
}

// recordError counts a request that got no response. It is filed under the class its kind
// would have had from the origin (the tier is unknown).
func (r *recorder) recordError(stage int32, region int, k Kind, kind string, at time.Time) {
	c := ClassUncached
	switch k {
	case KindPrivate:
		c = ClassPrivate
	case KindFrontend:
		c = ClassFrontend
	}
	if r.plan.Plain {
		region, c = 0, ClassUncached
	}
	r.mu.Lock()
	ph := r.phases[stage]
	s := r.series(ph, region, c)
	s.Requests++
	s.Failed++
	if ph.errors == nil {
		ph.errors = map[string]uint64{}
	}
	if _, ok := ph.errors[kind]; ok || len(ph.errors) < maxErrorKinds {
		ph.errors[kind]++
	} else {
		ph.errors["other"]++
	}
	r.window(at, -1, true)
	r.mu.Unlock()
}

func (r *recorder) result(total time.Duration) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &Result{Name: r.plan.Name, Target: r.plan.Target, Started: r.start.UTC(), Duration: total,
		Regions: append([]string(nil), r.plan.Regions...)}
	for i, ph := range r.phases {
		st := r.plan.Stages[i]
		p := Phase{Name: st.Name, Start: ph.start.UTC(), End: ph.end.UTC(), StartRate: st.StartRate,
			EndRate: st.EndRate, Planned: st.Duration, Scheduled: ph.scheduled.Load(),
			Dropped: ph.dropped.Load(), Cancelled: ph.cancelled.Load(), Series: []*Series{}}
		for _, s := range ph.series {
			if s == nil {
				continue
			}
			s.Latency = s.lat.Data()
			s.TTFB = s.ttfb.Data()
			p.Series = append(p.Series, s)
		}
		for k, v := range ph.errors {
			p.Errors = append(p.Errors, ErrorCount{Kind: k, Count: v})
		}
		sort.Slice(p.Errors, func(a, b int) bool { return p.Errors[a].Count > p.Errors[b].Count })
		res.Phases = append(res.Phases, p)
	}
	for i, w := range r.windows {
		h := r.winHist[i]
		w.P50, w.P95, w.P99, w.Max = h.Quantile(0.50), h.Quantile(0.95), h.Quantile(0.99), h.Max()
		w.Latency = h.Data()
		res.Windows = append(res.Windows, *w)
	}
	return res
}
