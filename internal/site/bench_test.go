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
