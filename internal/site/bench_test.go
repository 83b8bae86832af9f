package site

import "testing"

// The last line keeps the README's format (keys, order, precision).
func TestBenchLine(t *testing.T) {
	t.Parallel()
	r := &BenchResult{ColdRatio: 0.1071, RebuildRatio: 0.0209, OneChangeRatio: 0.162, OneChangePuts: 3, NoChangeRatio: 0.115}
	if got, want := r.Line(), "site: cold_ratio=0.107 rebuild_ratio=0.021 onechange_ratio=0.162 onechange_puts=3 nochange_ratio=0.115"; got != want {
		t.Fatalf("Line() = %q, want %q", got, want)
	}
}

// With the command timed, its four ratios follow in the order the issue gives them.
func TestBenchLineWithCLI(t *testing.T) {
	t.Parallel()
	r := &BenchResult{ColdRatio: 0.1071, RebuildRatio: 0.0209, OneChangeRatio: 0.162, OneChangePuts: 3, NoChangeRatio: 0.115,
		CLIRatios: map[string]float64{"cold": 0.1234, "rebuild": 0.0301, "onechange": 0.2, "nochange": 0.1999}}
	want := "site: cold_ratio=0.107 rebuild_ratio=0.021 onechange_ratio=0.162 onechange_puts=3 nochange_ratio=0.115" +
		" cli_cold_ratio=0.123 cli_rebuild_ratio=0.030 cli_onechange_ratio=0.200 cli_nochange_ratio=0.200"
	if got := r.Line(); got != want {
		t.Fatalf("Line() = %q, want %q", got, want)
	}
}
