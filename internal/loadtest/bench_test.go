package loadtest

import (
	"testing"

	"github.com/shtetl/zmanim-ops/internal/benchkit"
)

// TestBenchLineFormat keeps bench:loadgen's last line in the README's format.
func TestBenchLineFormat(t *testing.T) {
	t.Parallel()
	line := BenchResult{PlainRPS: 19332.4, ExtRPS: 19018, OverheadPct: 1.62, SpreadPct: 7.04}.Line()
	if want := "loadgen: plain_rps=19332 ext_rps=19018 overhead_pct=1.6 spread_pct=7.0"; line != want {
		t.Errorf("line = %q, want %q", line, want)
	}
	name, fields, err := benchkit.Parse(line)
	if err != nil || name != "loadgen" || len(fields) != 4 {
		t.Fatalf("Parse(%q) = %q, %v, %v", line, name, fields, err)
	}
}
