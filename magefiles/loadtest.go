package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/loadtest"
)

// Loadtest proves the latency targets from several regions at 10x the expected load.
//
// It runs a scenario from loadtest/scenarios.json against the edge of the selected environment
// (the local twin by default, ZOPS_ENV=prod for production), one request stream per region
// in loadtest/regions.json (the twin's edge adds each region's round trips), classifies every
// response as edge hit, shield hit, uncached, private or frontend from CloudFront's headers,
// prints p50/p95/p99, error rate, cache hit ratio and dropped iterations per region and class,
// writes report.md, report.html (chart) and result.json under reports/loadtest/<time>-<scenario>/
// compared with the previous run, and fails when a threshold in loadtest/thresholds.txt does.
//
// Options (environment):
//
//	ZOPS_LOADTEST_SCENARIO     smoke | load (default: target load, 50 x 10 = 500 req/s) | ramp | spike | soak
//	ZOPS_LOADTEST_DURATION     length of the scenario's main stage, e.g. 90s, 2h
//	ZOPS_LOADTEST_REGIONS      comma-separated regions (default all: us-east-1,il-central-1)
//	ZOPS_LOADTEST_TARGET       edge base URL (default: the twin's edge, or https://<domain> in prod)
//	ZOPS_LOADTEST_TOKEN        bearer token for /api/publisher/* (else those calls are left out)
//	ZOPS_LOADTEST_MINT_URL     URL to POST for a token when ZOPS_LOADTEST_TOKEN is unset
//	ZOPS_LOADTEST_HOT_RATIO    share of requests drawn from the hot (cacheable) set, 0..1
//	ZOPS_LOADTEST_THRESHOLDS   extra thresholds, ';'-separated, e.g. "il-central-1/edge_hit: p99 < 60ms"
//	ZOPS_LOADTEST_LABEL        release version or tag for the report directory
//	ZOPS_LOADTEST_REPORT_DIR   report root (default reports/loadtest)
//	ZOPS_LOADTEST_MAX_WORKERS  bound on requests in flight (default 1000)
//	ZOPS_LOADTEST_MIN_SAMPLES  fewest requests per judged region and class; fewer fail as "not enough samples" (default: the scenario's min_samples, 500 for load; 0 turns it off)
//	ZOPS_EXPECTED_RPS, ZOPS_LOAD_MULTIPLIER  the expected load and multiplier (config)
func Loadtest(ctx context.Context) error {
	return loadtest.LoadtestTarget(ctx, os.Stdout)
}
