package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/shtetl/zmanim-ops/internal/site"
)

// Site deploys the Next.js static export to the static bucket behind CloudFront.
type Site mg.Namespace

// Sync deploys the Next.js export in DIR (usually ./out) to the static bucket: assets first, then pages, then the manifest, then a CloudFront invalidation, then deletion of files stale past the grace period.
//
// Files are compared by SHA-256 (kept in a manifest object and in x-amz-meta-sha256), so a
// rebuild with the same content uploads nothing. Pages keep working while a deploy runs and
// for the grace period after it. Prints progress and a summary (uploaded, skipped, stale,
// deleted, bytes, invalidation paths).
//
// Options (environment):
//
//	ZOPS_ENV                   environment (local twin by default, prod)
//	ZOPS_SITE_BUCKET           bucket (default: the environment's static bucket)
//	ZOPS_SITE_GRACE            how long files no longer in the export stay (default 168h; 0 deletes at once)
//	ZOPS_SITE_MAX_DELETE       largest share of live files one sync may remove, 0..1 (default 0.5; 1 disables the guard)
//	ZOPS_SITE_PATHS            invalidation path budget; more paths collapse into wildcards (default 15)
//	ZOPS_SITE_WAIT             how long to wait for the invalidation to complete (default 10m)
//	ZOPS_SITE_CONCURRENCY      parallel uploads (default 32)
//	ZOPS_DISTRIBUTION_ID       CloudFront distribution (default: found by the domain's alias in AWS, the twin edge's id locally)
//	ZOPS_SITE_INVALIDATE       0 skips the CloudFront invalidation (a bucket with no distribution in front; default 1)
//	ZOPS_LOCK_WAIT             queue behind another sync holding the bucket's sync lock this long (default 0: fail at once naming it)
func (Site) Sync(ctx context.Context, dir string) error {
	return site.SyncTarget(ctx, os.Stdout, dir, false)
}

// Plan prints what site:sync DIR would do (uploads in order, invalidation paths, stale files, deletions, guard) without writing anything.
//
// Takes the same ZOPS_SITE_* options as site:sync.
func (Site) Plan(ctx context.Context, dir string) error {
	return site.SyncTarget(ctx, os.Stdout, dir, true)
}
