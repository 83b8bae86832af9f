package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/migrate"
	"github.com/shtetl/zmanim-ops/internal/twin"
)

// Verify times migrate:verify against the naive COPY|sha256 baseline and a data-diff-style md5 segment checksum on two 1M-row cities databases.
//
// It builds zops_bench_verify_src (1M cities: id, name, country, population, elevation,
// timezone, geometry point; ~135 MB) and a copy zops_bench_verify_tgt, then runs, interleaved,
// ZOPS_BENCH_RUNS times each: our verify (schema + data), the naive baseline (COPY ... ORDER BY
// id TO STDOUT | sha256 on both sides in parallel), the md5 segment checksum (32 segments, same
// parallelism), and our verify with one changed row (which it must name). Medians are printed;
// last line: `verify: rows=N ours_s=X naive_s=Y md5seg_s=Z onechange_s=W`.
// Goals: ours <= 1.2x naive, md5seg >= 1.5x ours, onechange <= 1.3x ours.
//
// The databases live on the PostgreSQL + PostGIS server given by (first set wins)
// ZOPS_BENCH_PG_URL, ZOPS_TEST_PG_URL (superuser URLs), or the running twin's PostgreSQL
// (`go tool mage twin:up`; superuser postgres with the twin's generated password). They are
// dropped afterwards.
//
// Options (environment):
//
//	ZOPS_BENCH_ROWS          rows in cities (default 1000000)
//	ZOPS_BENCH_RUNS          timed runs per method (default 3)
//	ZOPS_MIGRATE_PARALLEL    connections per side (default 4)
//	ZOPS_BENCH_KEEP=1        keep the two databases
func (Bench) Verify(ctx context.Context) error {
	return migrate.BenchTarget(ctx, os.Stdout, twin.PostgresURL())
}
