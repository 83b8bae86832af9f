package loadtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

func localEnv() *config.Env { return config.Defaults().Environments["local"] }

func TestExecuteSmokeAgainstFakeEdge(t *testing.T) {
	t.Parallel()
	// No latency profiles: this checks the mechanics; a cold request from us-east-1 would
	// legitimately miss the 100 ms frontend target with the real figures.
	srv := httptest.NewServer(NewFakeEdge(nil, time.Millisecond))
	defer srv.Close()
	dir := t.TempDir()
	var out bytes.Buffer
	rep, err := Execute(context.Background(), localEnv(), Options{Scenario: "smoke", Duration: 2 * time.Second,
		Target: srv.URL, Token: "t.o.k", HotRatio: -1, ReportDir: dir, Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !rep.Passed() {
		t.Errorf("smoke failed:\n%s", out.String())
	}
	got := map[string]bool{}
	for _, s := range rep.Result.Totals() {
		got[s.Region+"/"+s.Class] = true
		if s.Class == "private" && s.Hits > 0 {
			t.Error("private request served from cache")
		}
	}
	if !got["us-east-1/private"] && !got["il-central-1/private"] {
		t.Errorf("no private series; got %v", got)
	}
	for _, want := range []string{"us-east-1/edge_hit", "il-central-1/uncached", "il-central-1/frontend"} {
		if !got[want] {
			t.Errorf("no %s series; got %v", want, got)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("report dirs: %v", entries)
	}
	for _, f := range []string{"report.md", "report.html", "result.json", "outcomes.json"} {
		if _, err := os.Stat(filepath.Join(dir, entries[0].Name(), f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(out.String(), "| region | class | requests | p50 ms |") {
		t.Errorf("table not printed:\n%s", out.String())
	}
	if strings.Contains(out.String(), "t.o.k") {
		t.Error("the token was printed")
	}

	// A second run finds the first one and compares with it; a tight threshold fails it.
	rep2, err := Execute(context.Background(), localEnv(), Options{Scenario: "smoke", Duration: time.Second,
		Target: srv.URL, HotRatio: 0, ReportDir: dir, Out: &out, Thresholds: "us-east-1/uncached: p95 < 1us"})
	if !errors.Is(err, ErrThresholds) {
		t.Fatalf("err = %v, want ErrThresholds", err)
	}
	if rep2.PreviousDir == "" || rep2.Previous == nil {
		t.Error("second run did not find the first")
	}
}

func TestExecuteBadInput(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	tests := []struct {
		name string
		o    Options
		want string
		is   error
	}{
		{"unknown region", Options{Scenario: "smoke", Regions: "us-east-1,eu-mars-1", Target: srv.URL}, "known regions are il-central-1, us-east-1", ErrUnknownRegion},
		{"unknown scenario", Options{Scenario: "stress", Target: srv.URL}, "choose one of load, ramp, smoke, soak, spike", ErrUnknownScenario},
		{"malformed threshold", Options{Scenario: "smoke", Target: srv.URL, Thresholds: "edge_hit: p95 < fast"}, "want a duration with unit", ErrBadThreshold},
		{"threshold region", Options{Scenario: "smoke", Target: srv.URL, Thresholds: "mars/edge_hit: p95 < 5ms"}, "threshold \"mars/edge_hit", ErrUnknownRegion},
		{"unreachable", Options{Scenario: "smoke", Target: deadURL}, "ZOPS_LOADTEST_TARGET", ErrUnreachable},
		{"bad target", Options{Scenario: "smoke", Target: "edge:443"}, "not an http(s) URL", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.HotRatio, tc.o.ReportDir, tc.o.Duration = -1, t.TempDir(), time.Second
			_, err := Execute(context.Background(), localEnv(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReadOptions(t *testing.T) {
	r := opts.FromMap(map[string]string{"ZOPS_LOADTEST_SCENARIO": "spike", "ZOPS_LOADTEST_DURATION": "forever", "ZOPS_LOADTEST_HOT_RATIO": "1.5"})
	o := ReadOptions(r)
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), "ZOPS_LOADTEST_DURATION") || !strings.Contains(err.Error(), "ZOPS_LOADTEST_HOT_RATIO") {
		t.Errorf("err = %v", err)
	}
	if o.Scenario != "spike" {
		t.Errorf("scenario = %q", o.Scenario)
	}
}

func TestMintToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body, want, err string
	}{
		{`{"token":"a.b.c"}`, "a.b.c", ""},
		{`{"access_token":"d.e.f"}`, "d.e.f", ""},
		{"g.h.i\n", "g.h.i", ""},
		{`{"nope":1}`, "", "no token"},
		{"hello", "", "neither JSON nor a JWT"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				w.WriteHeader(405)
			}
			w.Write([]byte(tc.body))
		}))
		got, err := MintToken(context.Background(), srv.URL)
		srv.Close()
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("body %q: got %q, %v", tc.body, got, err)
		}
	}
}

// A missing frontend page stops the load test before any load, naming the page and the fix;
// pages that answer (and API endpoints, which are not probed) pass.
func TestCheckPagesRefusesMissingPages(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/docs/" {
			_, _ = io.WriteString(w, "<h1>docs</h1>")
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	eps := []EndpointSpec{{Name: "home", Path: "/", Kind: "frontend"}, {Name: "docs", Path: "/docs/", Kind: "frontend"}, {Name: "api", Path: "/api/zmanim?lat={lat}", Kind: "api"}}
	err := CheckPages(context.Background(), srv.Client(), srv.URL, eps)
	if !errors.Is(err, ErrNoPage) || !strings.Contains(err.Error(), "404 for /:") || !strings.Contains(err.Error(), "site:sync") {
		t.Fatalf("err = %v; want ErrNoPage naming / and site:sync", err)
	}
	if err := CheckPages(context.Background(), srv.Client(), srv.URL, eps[1:]); err != nil {
		t.Fatalf("docs page present: %v", err)
	}
}
