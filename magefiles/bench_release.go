package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/release"
)

// Release measures zero-downtime releases under 10x the expected load through the twin's edge.
//
// It releases once to warm the build cache, then ZOPS_BENCH_RUNS times (default 5) sends
// config load.expected_rps x load.multiplier (default 500 req/s; /health and cache-missing
// /api/zmanim, so every request reaches the box) through the edge with internal/loadtest and
// runs a full `release` in the middle; the load ends gracefully, so every request sent is
// judged. Then the baseline, the spec's path 2 (restart the API on its own port), runs under
// the same load with two of the binaries and prints its failed requests.
// Last line: `release: runs=N failed_requests=F p99_ms_steady=S p99_ms_swap_worst=W seconds=T`
// (F over all runs; S the p99 of all runs' steady windows; W the worst run's p99 from the
// deploy step's start to 1 s after its end, on 10 ms windows; T the slowest release, build to
// deploy). Each run prints the p99 per 100 ms around the deploy step, the release's step
// timeline and its slowest requests, to tell which phase a spike belongs to. The bench's own
// garbage collector is paused during each run (the load generator shares the process with
// the release tooling). Goals: failed_requests=0, W at most 2x S, releases under 20 s. Each run adds a bench
// version to the twin's releases bucket (retention prunes them). Takes 3-5 minutes. Uses a
// running twin as it is; brings it up only when its edge does not answer.
//
// Options: ZOPS_BENCH_RUNS, ZOPS_ALLOW_DIRTY=1 (release uncommitted changes), ZOPS_SMOKE=0,
// ZOPS_EXPECTED_RPS, ZOPS_LOAD_MULTIPLIER.
func (Bench) Release(ctx context.Context) error {
	return release.BenchTarget(ctx, os.Stdout, startTwin)
}
