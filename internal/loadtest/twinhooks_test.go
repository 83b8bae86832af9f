package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/edge"
)

func defaultProfiles(t *testing.T) *RegionProfiles {
	t.Helper()
	p, err := RepoPath(DefaultRegionsFile)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := LoadRegionProfiles(p)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

// TestTwinLatencyBodyMatchesEdge decodes the body as the twin edge does (strictly, into
// edge.Latency) so that the two cannot drift apart.
func TestTwinLatencyBodyMatchesEdge(t *testing.T) {
	t.Parallel()
	rp := defaultProfiles(t)
	b, err := TwinLatencyBody(rp.Regions)
	if err != nil {
		t.Fatal(err)
	}
	var l edge.Latency
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("the edge rejects the body: %v\n%s", err, b)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	us := l.Profiles["us-east-1"]
	if !l.Enabled || us.Viewer.RTT.D() != 10*time.Millisecond || us.Shield.RTT.D() != 80500*time.Microsecond ||
		us.Origin.RTT.D() != time.Millisecond || us.Shield.Jitter.D() != 4*time.Millisecond || us.Pop != "IAD-TWIN" {
		t.Errorf("us-east-1 profile = %+v", us)
	}
	if _, ok := l.Profiles["il-central-1"]; !ok {
		t.Error("il-central-1 missing")
	}
}

func TestEnableTwinLatencyRestores(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	state := []byte(`{"enabled":false,"profiles":null,"default":"","fault":{"rate":0,"mode":"","delay":"0s"}}`)
	var puts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/_twin/latency" {
			w.WriteHeader(404)
			return
		}
		if r.Method == http.MethodPut {
			state, _ = io.ReadAll(r.Body)
			puts++
		}
		w.Write(state)
	}))
	defer srv.Close()
	orig := string(state)
	restore, err := EnableTwinLatency(context.Background(), srv.URL, defaultProfiles(t).Regions)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if !bytes.Contains(state, []byte(`"enabled":true`)) || !bytes.Contains(state, []byte(`"il-central-1"`)) {
		t.Errorf("hooks not enabled: %s", state)
	}
	mu.Unlock()
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if string(state) != orig || puts != 2 {
		t.Errorf("restored %s after %d puts, want %s", state, puts, orig)
	}
	if _, err := EnableTwinLatency(context.Background(), "http://127.0.0.1:1", nil); err == nil {
		t.Error("want an error for an unreachable control endpoint")
	}
}

func TestSplitStages(t *testing.T) {
	t.Parallel()
	got := splitStages([]Stage{Ramp("r", 0, 500, time.Minute), Constant("c", 500, time.Minute)}, 2)
	if got[0].EndRate != 250 || got[1].StartRate != 250 || got[1].Duration != time.Minute {
		t.Errorf("split = %+v", got)
	}
}
