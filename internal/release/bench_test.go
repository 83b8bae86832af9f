package release

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBenchLine(t *testing.T) {
	r := BenchResult{Runs: make([]BenchRun, 5), Failed: 0, P99Steady: 4200 * time.Microsecond, P99SwapWorst: 7 * time.Millisecond, Seconds: 12.34}
	if got, want := r.Line(), "release: runs=5 failed_requests=0 p99_ms_steady=4.2 p99_ms_swap_worst=7.0 seconds=12.3"; got != want {
		t.Fatalf("Line() = %q, want %q", got, want)
	}
	var b bytes.Buffer
	w := prefixed(&b, "> ")
	w.Write([]byte("a\nb"))
	w.Write([]byte("c\n"))
	if b.String() != "> a\n> bc\n" {
		t.Fatalf("prefixed: %q", b.String())
	}
}

// The baseline (restart on the API's own port) must show what a restart costs: refused
// connections while no process listens.
func TestBenchBaselineRefusesDuringRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	envFile := filepath.Join(t.TempDir(), "api.env")
	must(t, os.WriteFile(envFile, []byte("FAKE_READY_DELAY=0s\n"), 0o600))
	a, b := versioned(t, fakeHost, "v1"), versioned(t, fakeHost, "v2")
	bl, err := BenchBaseline(context.Background(), a, b, envFile, 300)
	if err != nil {
		t.Fatal(err)
	}
	if bl.Requests < 500 || bl.Gap <= 0 || bl.Failed == 0 {
		t.Fatalf("baseline %+v", bl)
	}
	t.Logf("baseline: %d of %d failed, gap %s", bl.Failed, bl.Requests, bl.Gap)
}
