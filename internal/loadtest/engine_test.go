package loadtest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func fixedSource(url string) Source {
	return SourceFunc(func(_ uint64, r *Request) { r.URL = url; r.Kind = KindAPI })
}

func TestEngineHonoursArrivalRate(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-Cache", "Hit from cloudfront")
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Plan{
		Name: "rate", Target: srv.URL, Source: fixedSource(srv.URL + "/api/zmanim"),
		Stages: []Stage{Constant("c", 200, 1500*time.Millisecond)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// 200/s for 1.5 s is 300 arrivals; the schedule is exact, so allow only a few for timing.
	if n := res.Scheduled(); n < 297 || n > 300 {
		t.Errorf("scheduled %d arrivals, want 300 (±3)", n)
	}
	if got := hits.Load(); got != int64(res.Scheduled()) {
		t.Errorf("server saw %d requests, scheduled %d, dropped %d", got, res.Scheduled(), res.Dropped())
	}
	if res.Dropped() != 0 {
		t.Errorf("dropped %d with a fast server", res.Dropped())
	}
	if res.Duration < 1400*time.Millisecond || res.Duration > 2500*time.Millisecond {
		t.Errorf("run took %v, want about 1.5 s", res.Duration)
	}
	tot := res.Totals()
	if len(tot) != 1 || tot[0].Class != "edge_hit" || tot[0].Requests != uint64(hits.Load()) {
		t.Fatalf("totals = %+v", tot)
	}
}

func TestEngineCountsDroppedInsteadOfSlowingDown(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(300 * time.Millisecond)
	}))
	defer srv.Close()
	// 100/s for 1 s against a 300 ms server with at most 5 workers: each worker completes about
	// 3-4 requests, so ~17 are sent and the rest must be dropped, not queued or delayed.
	start := time.Now()
	res, err := Run(context.Background(), Plan{
		Source: fixedSource(srv.URL + "/slow"), MaxWorkers: 5, PreAllocated: 1, Window: 500 * time.Millisecond,
		Stages: []Stage{Constant("slow", 100, time.Second)},
	})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if n := res.Scheduled(); n < 98 || n > 100 {
		t.Errorf("scheduled %d, want 100: the arrival rate must not follow the response time", n)
	}
	sent := uint64(hits.Load())
	if res.Dropped()+sent != res.Scheduled() {
		t.Errorf("dropped %d + sent %d != scheduled %d", res.Dropped(), sent, res.Scheduled())
	}
	if sent > 25 || res.Dropped() < 75 {
		t.Errorf("sent %d dropped %d: expected most arrivals dropped with 5 workers", sent, res.Dropped())
	}
	var wd uint64
	for _, w := range res.Windows {
		wd += w.Dropped
	}
	if wd != res.Dropped() {
		t.Errorf("windows count %d dropped, phases %d", wd, res.Dropped())
	}
	if elapsed > 2*time.Second {
		t.Errorf("run took %v: a slow target must not stretch the run", elapsed)
	}
}

func TestEngineRampSchedule(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res, err := Run(context.Background(), Plan{
		Source: fixedSource(srv.URL), Window: 500 * time.Millisecond,
		Stages: []Stage{Ramp("up", 0, 400, time.Second), Ramp("down", 400, 0, time.Second)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each ramp integrates to 200 arrivals.
	for _, ph := range res.Phases {
		if ph.Scheduled < 196 || ph.Scheduled > 200 {
			t.Errorf("phase %s scheduled %d, want 200", ph.Name, ph.Scheduled)
		}
	}
	// The first half second of the ramp up holds a quarter of its arrivals (50).
	if len(res.Windows) < 4 {
		t.Fatalf("windows = %d", len(res.Windows))
	}
	if w := res.Windows[0].Requests; w < 40 || w > 60 {
		t.Errorf("first window has %d requests, want about 50", w)
	}
	if w := res.Windows[1].Requests; w < 140 || w > 160 {
		t.Errorf("second window has %d requests, want about 150", w)
	}
}

func TestEngineClassifiesFailures(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/publisher/") {
			// A private response from a cache: must count as failed even with 200.
			w.Header().Set("X-Cache", "Hit from cloudfront")
			return
		}
		w.Header().Set("X-Cache", "Miss from cloudfront")
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	src := SourceFunc(func(i uint64, r *Request) {
		if i%2 == 0 {
			r.URL, r.Kind = srv.URL+"/api/publisher/me", KindPrivate
		} else {
			r.URL, r.Kind = srv.URL+"/api/zmanim", KindAPI
		}
		r.Region = int(i % 2)
	})
	res, err := Run(context.Background(), Plan{Source: src, Regions: []string{"a", "b"},
		Stages: []Stage{Constant("x", 100, 500*time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Totals() {
		switch s.Class {
		case "private":
			if s.Region != "a" || s.Leaks != s.Requests || s.Failed != s.Requests {
				t.Errorf("private series %+v: every cached private response must be a failed leak", s)
			}
		case "uncached":
			if s.Region != "b" || s.Failed != s.Requests || s.Status[502] != s.Requests {
				t.Errorf("uncached series %+v: 502s must be failed", s)
			}
		default:
			t.Errorf("unexpected class %s", s.Class)
		}
	}
}

func TestRunRejectsUnreachableTarget(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	_, err = Run(context.Background(), Plan{Target: "http://" + addr, Source: fixedSource("http://" + addr),
		Stages: []Stage{Constant("x", 1, time.Second)}})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "ZOPS_LOADTEST_TARGET") {
		t.Fatalf("err = %v, want ErrUnreachable with a hint", err)
	}
}

func TestPlanValidation(t *testing.T) {
	t.Parallel()
	_, err := Run(context.Background(), Plan{Stages: []Stage{{Name: "bad", Duration: 0, StartRate: -1}}})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"duration must be positive", "rates must not be negative", "no request source"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.95, 950 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.Quantile(tc.q)
		if diff := float64(got-tc.want) / float64(tc.want); diff < 0 || diff > 1.0/64 {
			t.Errorf("q%.2f = %v, want %v within +1/64", tc.q, got, tc.want)
		}
	}
	h2, err := HistogramFromData(h.Data())
	if err != nil || h2.Count() != 1000 || h2.Quantile(0.95) != h.Quantile(0.95) || h2.Max() != time.Second {
		t.Fatalf("round trip: %v %d", err, h2.Count())
	}
	var m Histogram
	m.Merge(&h)
	m.Merge(h2)
	if m.Count() != 2000 || m.Quantile(0.5) != h.Quantile(0.5) {
		t.Errorf("merge: count %d p50 %v", m.Count(), m.Quantile(0.5))
	}
	if _, err := HistogramFromData(HistogramData{Buckets: [][2]uint64{{1 << 20, 1}}}); err == nil {
		t.Error("want error for bad bucket index")
	}
}

// TestSteadyShowsAnOutageInItsWindow is the release bench's use: steady load while the
// target fails for a while; the failures must land in the windows of the outage.
func TestSteadyShowsAnOutageInItsWindow(t *testing.T) {
	t.Parallel()
	start := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if el := time.Since(start); el > 1100*time.Millisecond && el < 1900*time.Millisecond {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("X-Cache", "Miss from cloudfront")
	}))
	defer srv.Close()
	plan := Steady(srv.URL, 100, 3*time.Second, "/api/zmanim?lat=1&lon=2", "/")
	res, err := Run(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Windows) != 3 {
		t.Fatalf("%d windows, want 3", len(res.Windows))
	}
	if w := res.Windows[0]; w.Failed != 0 || w.Requests < 95 || w.P95 <= 0 {
		t.Errorf("window 0 = %+v, want ~100 requests, none failed", w)
	}
	if w := res.Windows[1]; w.Failed < 70 || w.Failed > 95 {
		t.Errorf("window 1 has %d failed, want ~80 (the outage from 1.1 s to 1.9 s)", w.Failed)
	}
	if w := res.Windows[2]; w.Failed != 0 {
		t.Errorf("window 2 has %d failed, want 0", w.Failed)
	}
	classes := map[string]bool{}
	for _, s := range res.Totals() {
		classes[s.Class] = true
	}
	if !classes["uncached"] || !classes["frontend"] {
		t.Errorf("classes %v", classes)
	}
}

// TestStopEndsGracefully: a run ended with Plan.Stop lets the requests in flight finish and
// counts them; a run ended by cancelling its context counts the requests it cut short as
// cancelled, not as failed (the caller ended them, not the target). Before, a test that
// stopped its load by cancelling found "1 failed request" whenever one was in flight.
func TestStopEndsGracefully(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond) // always some requests in flight
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	plan := func() Plan {
		return Plan{Name: "stop", Plain: true, Stages: []Stage{Constant("s", 100, time.Minute)},
			Source: SourceFunc(func(_ uint64, r *Request) { r.URL = srv.URL })}
	}
	// Graceful: everything sent is answered and counted.
	stop := make(chan struct{})
	p := plan()
	p.Stop = stop
	time.AfterFunc(500*time.Millisecond, func() { close(stop) })
	t0 := time.Now()
	res, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("stopped run took %s", d)
	}
	var n, failed uint64
	for _, s := range res.Totals() {
		n, failed = n+s.Requests, failed+s.Failed
	}
	if failed != 0 || n != res.Scheduled() || n < 20 || res.Phases[0].Cancelled != 0 {
		t.Errorf("graceful stop: %d requests, %d failed, %d scheduled, %d cancelled: want every scheduled request answered", n, failed, res.Scheduled(), res.Phases[0].Cancelled)
	}
	// Cancelled: the requests in flight are cut short and counted apart.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	res, err = Run(ctx, plan())
	if err != nil {
		t.Fatal(err)
	}
	n, failed = 0, 0
	for _, s := range res.Totals() {
		n, failed = n+s.Requests, failed+s.Failed
	}
	if failed != 0 || res.Phases[0].Cancelled == 0 || n+res.Phases[0].Cancelled != res.Scheduled() {
		t.Errorf("cancelled run: %d requests, %d failed, %d cancelled, %d scheduled", n, failed, res.Phases[0].Cancelled, res.Scheduled())
	}
}
