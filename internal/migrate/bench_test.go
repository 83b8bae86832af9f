package migrate

import "testing"

// The last line keeps the README's format (keys, order, precision).
func TestBenchLine(t *testing.T) {
	t.Parallel()
	r := BenchResult{Rows: 1_000_000, Ours: 2.6444, Naive: 4.764, MD5Seg: 6.141, OneCh: 2.8469}
	if got, want := r.Line(), "verify: rows=1000000 ours_s=2.644 naive_s=4.764 md5seg_s=6.141 onechange_s=2.847"; got != want {
		t.Fatalf("Line() = %q, want %q", got, want)
	}
}
