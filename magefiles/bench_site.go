package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/site"
)

// Site compares site:sync with `aws s3 sync` on a generated ~3,000-file, ~40 MB Next-like export: cold, rebuild (same content, new mtimes), one changed chunk plus its page, no change.
//
// Last line: `site: cold_ratio=A rebuild_ratio=B onechange_ratio=D onechange_puts=N nochange_ratio=C`
// (ratios are our time over aws's in the same run; PUTs are counted by our client).
// Takes about a minute (aws s3 sync's cold upload dominates).
//
// Options (environment):
//
//	ZOPS_S3_ENDPOINT, ZOPS_S3_ACCESS_KEY, ZOPS_S3_SECRET_KEY  S3 server to use; unset: the twin's
//	                           S3 when the twin is up, else a versitygw the bench starts on a free loopback port
//	ZOPS_VERSITYGW             versitygw binary (default: PATH, then ~/.cache/zmanim-ops/bin/versitygw-warm)
//	ZOPS_AWS_CLI               aws CLI v2 (default /usr/bin/aws)
//	ZOPS_SITE_CONCURRENCY      our parallel uploads (default 32)
func (Bench) Site(ctx context.Context) error {
	return site.BenchTarget(ctx, os.Stdout)
}
