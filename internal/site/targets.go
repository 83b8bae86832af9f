package site

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/config"
)

// InvalidateTarget is `mage edge:invalidate PATHS`: it invalidates the paths on the selected
// environment's distribution (ZOPS_DISTRIBUTION_ID, else found by the domain's alias; the
// twin edge's id locally) and waits for completion (ZOPS_INVALIDATE_WAIT, default 15m; 0
// returns at once).
func InvalidateTarget(ctx context.Context, out io.Writer, arg string) error {
	paths, err := awsx.ParsePaths(arg)
	if err != nil {
		return err
	}
	wait := 15 * time.Minute
	if v := os.Getenv("ZOPS_INVALIDATE_WAIT"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("ZOPS_INVALIDATE_WAIT=%q: write a duration like 5m, or 0 not to wait", v)
		}
	}
	env, err := config.Load()
	if err != nil {
		return err
	}
	c, err := awsx.New(ctx, env)
	if err != nil {
		if env.IsTwin() {
			return fmt.Errorf("the local twin is not set up: %w (start it with `go tool mage twin:up`)", err)
		}
		return err
	}
	cf, err := c.Distribution(ctx, os.Getenv(awsx.EnvDistributionID))
	if err != nil {
		return err
	}
	err = InvalidatePaths(ctx, out, cf, paths, wait, env.Name)
	if err != nil && env.IsTwin() && strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%w; is the twin up? start it with `go tool mage twin:up`", err)
	}
	return err
}

// InvalidatePaths invalidates paths on cf's distribution, waits up to wait (0: not at all)
// and says what it did.
func InvalidatePaths(ctx context.Context, out io.Writer, cf *awsx.CloudFront, paths []string, wait time.Duration, where string) error {
	start := time.Now()
	fmt.Fprintf(out, "invalidating %d path(s) on %s (%s): %s\n", len(paths), cf.Distribution, where, strings.Join(paths, " "))
	inv, err := cf.InvalidateAndWait(ctx, paths, wait)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "invalidation %s: %s in %s\n", inv.ID, inv.Status, time.Since(start).Round(time.Millisecond))
	return nil
}
