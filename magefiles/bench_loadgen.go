package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/loadtest"
)

// Loadgen measures the load generator's maximum request rate on loopback, without and with
// the load test's per-request work (request mix, region tagging, classification, histograms),
// then runs the 10x profile (500 req/s) with that work and reports dropped iterations.
//
// The two variants alternate round by round, and which goes first alternates too
// (ZOPS_BENCH_ROUNDS rounds each, default 12, of
// ZOPS_BENCH_ROUND, default 3s, at ZOPS_BENCH_RATE arrivals per second, default 1000); each
// round's rate is the generator's CPU cost per request turned into requests per second of
// all cores, so other load on the machine moves it little.
// Last line: `loadgen: plain_rps=A ext_rps=B overhead_pct=C spread_pct=D` (A, B: medians of
// the rounds; C: the median of the rounds' paired overheads, ext against plain of the same
// round; D: the larger interquartile range of the two variants' rounds, in percent of its
// median).
// Goal: overhead_pct <= 5.
func (Bench) Loadgen(ctx context.Context) error {
	return loadtest.BenchLoadgenTarget(ctx, os.Stdout)
}
