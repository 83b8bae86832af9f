package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/loadtest"
)

// Loadgen measures the load generator's maximum request rate on loopback, without and with
// the load test's per-request work (request mix, region tagging, classification, histograms),
// then runs the 10x profile (500 req/s) with that work and reports dropped iterations.
// Last line: `loadgen: plain_rps=A ext_rps=B overhead_pct=C`.
func (Bench) Loadgen(ctx context.Context) error {
	return loadtest.BenchLoadgenTarget(ctx, os.Stdout)
}
