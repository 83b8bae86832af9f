package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/shtetl/zmanim-ops/internal/site"
)

// Edge works on the CloudFront distribution (the twin's edge on the local environment).
type Edge mg.Namespace

// Invalidate purges PATHS from the CloudFront caches (edge and Origin Shield) and waits until it is done.
//
// PATHS is a comma- or space-separated list, e.g. "/index.html,/docs/*" or "/*"; '*' may only
// end a path. The call goes through the CloudFront API (aws-sdk-go-v2): on the local twin to
// the edge's control endpoint, in AWS to the distribution whose alias is the environment's
// domain.
//
// Options (environment):
//
//	ZOPS_ENV                environment (default local, the twin)
//	ZOPS_DISTRIBUTION_ID    distribution id (default: found by alias; the twin's fixed id locally)
//	ZOPS_INVALIDATE_WAIT    how long to wait for completion (default 15m; 0 returns at once)
func (Edge) Invalidate(ctx context.Context, paths string) error {
	return site.InvalidateTarget(ctx, os.Stdout, paths)
}
