package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/release"
)

// Release measures a zero-downtime release under 10x the expected load through the twin's edge.
//
// It releases once to warm the build cache, then sends config load.expected_rps x
// load.multiplier (default 500 req/s; /health and cache-missing /api/zmanim, so every request
// reaches the box) through the edge with internal/loadtest, and runs a full `release` in the
// middle. Then the baseline, the spec's path 2 (restart the API on its own port), runs under
// the same load with the same two binaries and prints its failed requests. Last line: `release: failed_requests=N p99_ms_steady=X p99_ms_swap=Y seconds=Z`
// (seconds: the warm release, build to retention). Goals: failed_requests=0, swap p99 at most
// 2x steady, warm release under 20 s. Each run adds two bench versions to the twin's releases
// bucket (retention prunes them). Takes about a minute; brings the twin up if needed.
//
// Options: ZOPS_ALLOW_DIRTY=1 (release uncommitted changes), ZOPS_SMOKE=0, ZOPS_EXPECTED_RPS,
// ZOPS_LOAD_MULTIPLIER.
func (Bench) Release(ctx context.Context) error {
	return release.BenchTarget(ctx, os.Stdout, startTwin)
}
