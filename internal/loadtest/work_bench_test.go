package loadtest

import (
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
