package loadtest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkPerRequestWork isolates the extension's per-request work from the HTTP round trip.
func BenchmarkPerRequestWork(b *testing.B) {
	f := loadScenariosB(b)
	mix, err := NewMix(f.Mix, MixOptions{Target: "http://127.0.0.1:1", Regions: []string{"us-east-1", "il-central-1"}, RegionHeader: true, Token: "x.y.z", HotRatio: -1})
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{"X-Cache": {"Hit from cloudfront"}, "Age": {"12"}, "X-Amz-Cf-Pop": {"IAD89-C1"}}
	b.Run("plain", func(b *testing.B) {
		p := Plan{Regions: []string{"local"}, Stages: []Stage{Constant("s", 1, time.Second)}, Plain: true}
		rec := newRecorder(&p)
		rec.start = time.Now()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			req, _ := http.NewRequest("GET", "http://127.0.0.1:1/api/zmanim?lat=31.768300&lon=35.213700&date=2026-12-01", nil)
			_ = req
			t0 := time.Now()
			rec.recordPlain(0, t0, time.Since(t0), false, 200)
		}
	})
	b.Run("ext", func(b *testing.B) {
		p := Plan{Regions: []string{"us-east-1", "il-central-1"}, Stages: []Stage{Constant("s", 1, time.Second)}, Window: time.Second}
		rec := newRecorder(&p)
		rec.start = time.Now()
		var r Request
		b.ReportAllocs()
		for i := uint64(0); b.Loop(); i++ {
			mix.Next(i, &r)
			req, _ := http.NewRequest("GET", r.URL, nil)
			req.Header = r.Header
			t0 := time.Now()
			c := Classify(r.Kind, h)
			ttfb := time.Since(t0)
			rec.record(0, r.Region, c, t0, ttfb, time.Since(t0), false, 200)
		}
	})
}

func loadScenariosB(b *testing.B) *ScenarioFile {
	p, err := RepoPath(DefaultScenariosFile)
	if err != nil {
		b.Fatal(err)
	}
	f, err := LoadScenarioFile(p)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// cannedTransport answers every request in memory, after serialising it as the real
// transport would, with an edge hit's headers: BenchmarkEngineDo measures the engine's own
// per-request work, plain and with the load test's extension, without the network stack
// whose cost (most of a request's CPU on loopback) is the same for both.
type cannedTransport struct{}

var cannedEdgeBody = []byte(`{"sunrise":"06:12","sunset":"16:41"}`)

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var b bytes.Buffer
	r.Write(&b) // what the transport would serialise
	h := http.Header{"Content-Type": {"application/json"}, "X-Cache": {"Hit from cloudfront"}, "Age": {"12"}, "X-Amz-Cf-Pop": {"IAD89-C1"}}
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(bytes.NewReader(cannedEdgeBody)), Request: r}, nil
}

// BenchmarkEngineDo is engine.do per request through cannedTransport: the difference
// between ext and plain is what the extension adds per request (bench:loadgen measures the
// same over real loopback HTTP, where the network stack makes it noisy).
func BenchmarkEngineDo(b *testing.B) {
	f := loadScenariosB(b)
	regions := []string{"us-east-1", "il-central-1"}
	mix, _ := NewMix(f.Mix, MixOptions{Target: "http://127.0.0.1:41234", Regions: regions, RegionHeader: true, Token: "bench.token.x", HotRatio: -1})
	plainURL := "http://127.0.0.1:41234/api/zmanim?lat=31.768300&lon=35.213700&date=2026-12-01"
	for _, ext := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "ext"}[ext]
		b.Run(name, func(b *testing.B) {
			p := Plan{Name: "x", Stages: []Stage{Constant("s", 1, time.Hour)}, Client: &http.Client{Transport: cannedTransport{}, Timeout: 10 * time.Second}}
			if ext {
				p.Source, p.Regions, p.Window = mix, regions, time.Second
			} else {
				p.Source, p.Plain = SourceFunc(func(_ uint64, r *Request) { r.URL = plainURL }), true
			}
			if err := p.validate(); err != nil {
				b.Fatal(err)
			}
			e := &engine{plan: p, ctx: context.Background(), client: p.Client, rt: p.Client.Transport, timeout: 10 * time.Second}
			e.rec = newRecorder(&e.plan)
			e.start = time.Now()
			e.rec.start = e.start
			var req Request
			b.ReportAllocs()
			for i := uint64(100); b.Loop(); i++ {
				e.do(item{iter: i, stage: 0, due: time.Now()}, &req)
			}
		})
	}
}
