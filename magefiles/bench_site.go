package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/site"
)

// Site compares site:sync with `aws s3 sync` on a generated ~3,000-file, ~40 MB Next-like export: cold, rebuild (same content, new mtimes), one changed chunk plus its page, no change.
//
// When the twin's S3 is up, the command a user types is timed too, as a whole process beside
// the other two on the same tree and server: the magefiles are compiled once (`go tool mage
// -compile`, the binary `go tool mage` runs) and `BIN site:sync DIR` runs from exec to exit
// into its own bucket, without invalidation (ZOPS_SITE_INVALIDATE=0; aws s3 sync does not
// invalidate either). What `go tool mage` adds in front of that binary is measured and
// printed, not counted. Every scenario runs ZOPS_BENCH_RUNS times (fresh buckets each run);
// times are medians.
//
// Last line: `site: cold_ratio=A rebuild_ratio=B onechange_ratio=D onechange_puts=N nochange_ratio=C
// cli_cold_ratio=E cli_rebuild_ratio=F cli_onechange_ratio=G cli_nochange_ratio=H` (ratios are
// a time over aws's in the same run; PUTs are counted by our client; cli_* only when timed).
// Goals: cold <= 0.19, rebuild <= 0.031, one change <= 0.25, no change <= 0.24 for cli_*.
// Takes 2-3 minutes (aws s3 sync's cold upload dominates). The generated exports live on
// /dev/shm when there is one: on this ext4 disk, creating files slows down for a minute or
// more after thousands were deleted, which taxes the S3 server's uploads in the timed runs
// (leave 90 s after another bench that deleted buckets).
//
// Options (environment):
//
//	ZOPS_S3_ENDPOINT, ZOPS_S3_ACCESS_KEY, ZOPS_S3_SECRET_KEY  S3 server to use; unset: the twin's
//	                           S3 when the twin is up, else a versitygw the bench starts on a free loopback port
//	ZOPS_VERSITYGW             versitygw binary (default: PATH, then ~/.cache/zmanim-ops/bin/versitygw-warm)
//	ZOPS_AWS_CLI               aws CLI v2 (default /usr/bin/aws)
//	ZOPS_SITE_CONCURRENCY      our parallel uploads (default 32)
//	ZOPS_BENCH_RUNS            runs of the four scenarios (default 3)
func (Bench) Site(ctx context.Context) error {
	return site.BenchTarget(ctx, os.Stdout)
}
