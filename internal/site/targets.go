package site

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/opts"
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
	r := opts.New()
	wait, distribution := ReadInvalidateOptions(r)
	if err := r.Err(); err != nil {
		return err
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
	cf, err := c.Distribution(ctx, distribution)
	if err != nil {
		return err
	}
	err = InvalidatePaths(ctx, out, cf, paths, wait, env.Name)
	if err != nil && env.IsTwin() && strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%w; is the twin up? start it with `go tool mage twin:up`", err)
	}
	return err
}

// ReadInvalidateOptions reads edge:invalidate's options: how long to wait for completion
// (ZOPS_INVALIDATE_WAIT, default 15m; 0 returns at once) and the distribution
// (ZOPS_DISTRIBUTION_ID).
func ReadInvalidateOptions(r *opts.Reader) (wait time.Duration, distribution string) {
	return r.Duration("ZOPS_INVALIDATE_WAIT", 15*time.Minute), r.String(awsx.EnvDistributionID, "")
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

// ReadEnv reads the ZOPS_SITE_* options (and ZOPS_DISTRIBUTION_ID) into r.
func ReadEnv(r *opts.Reader) EnvOptions {
	o := EnvOptions{
		Grace:        r.Duration("ZOPS_SITE_GRACE", 0),
		Wait:         r.Duration("ZOPS_SITE_WAIT", 0),
		PathBudget:   r.PositiveInt("ZOPS_SITE_PATHS", 0),
		Concurrency:  r.PositiveInt("ZOPS_SITE_CONCURRENCY", 0),
		Distribution: r.String(awsx.EnvDistributionID, ""),
		Bucket:       r.String("ZOPS_SITE_BUCKET", ""),
		NoInvalidate: !r.Bool("ZOPS_SITE_INVALIDATE", true),
		LockWait:     r.Duration("ZOPS_LOCK_WAIT", 0),
	}
	if r.Set("ZOPS_SITE_GRACE") && o.Grace == 0 {
		o.Grace = -1 // delete at once
	}
	if v := r.String("ZOPS_SITE_MAX_DELETE", ""); v != "" {
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if strings.HasSuffix(v, "%") {
			f /= 100
		}
		if err != nil || f <= 0 || f > 1 {
			r.Problem("ZOPS_SITE_MAX_DELETE", v, "want a share in (0,1] such as 0.5 or 50%")
		} else {
			o.MaxDeleteShare = f
		}
	}
	if v := r.String("ZOPS_SITE_DISTRIBUTION_ID", ""); v != "" {
		r.Problem("ZOPS_SITE_DISTRIBUTION_ID", v, "no longer read: set "+awsx.EnvDistributionID+" (one variable for the distribution, shared with edge:invalidate)")
	}
	return o
}

// SyncTarget is site:sync DIR (dryRun false) and site:plan DIR (dryRun true) for the
// configured environment.
func SyncTarget(ctx context.Context, out io.Writer, dir string, dryRun bool) error {
	r := opts.New()
	eo := ReadEnv(r)
	if err := r.Err(); err != nil {
		return err
	}
	env, err := config.Load()
	if err != nil {
		return err
	}
	t, err := DestinationFor(ctx, env, eo)
	if err != nil {
		return err
	}
	verb := map[bool]string{true: "plan", false: "sync"}[dryRun]
	fmt.Fprintf(out, "site: %s %s -> s3://%s (%s)\n", verb, dir, t.Bucket, env.Name)
	inv := t.Invalidator
	if eo.NoInvalidate {
		fmt.Fprintln(out, "site: ZOPS_SITE_INVALIDATE=0: the CDN is not invalidated")
		inv = nil
	}
	_, _, err = Sync(ctx, Options{
		Dir: dir, Store: t.Store, Invalidator: inv,
		Grace: eo.Grace, MaxDeleteShare: eo.MaxDeleteShare, PathBudget: eo.PathBudget,
		Wait: eo.Wait, Concurrency: eo.Concurrency, DryRun: dryRun, Out: out,
		Lease: t.Lease, LockWait: eo.LockWait, Who: owner(),
	})
	if err != nil {
		return fmt.Errorf("site %s: %w", verb, err)
	}
	return nil
}

// ReadBenchOptions reads bench:site's options: an explicit S3 endpoint (ZOPS_S3_*; default
// the running twin's, else a versitygw of its own, ZOPS_VERSITYGW), the aws cli to compare
// with (ZOPS_AWS_CLI) and ZOPS_SITE_CONCURRENCY.
func ReadBenchOptions(r *opts.Reader) BenchOptions {
	eo := ReadEnv(r)
	return BenchOptions{
		Endpoint: awsx.S3Endpoint{URL: r.String("ZOPS_S3_ENDPOINT", ""), AccessKey: r.String("ZOPS_S3_ACCESS_KEY", ""),
			SecretKey: r.String("ZOPS_S3_SECRET_KEY", ""), Region: r.String("ZOPS_S3_REGION", "")},
		AWS:         r.String("ZOPS_AWS_CLI", ""),
		Versitygw:   r.String("ZOPS_VERSITYGW", ""),
		Concurrency: eo.Concurrency,
		Runs:        r.PositiveInt("ZOPS_BENCH_RUNS", 3),
	}
}

// BenchTarget is bench:site: it prints the result line last.
func BenchTarget(ctx context.Context, out io.Writer) error {
	r := opts.New()
	o := ReadBenchOptions(r)
	if err := r.Err(); err != nil {
		return err
	}
	if o.Endpoint.URL == "" {
		region := o.Endpoint.Region
		o.Endpoint = twinS3(ctx)
		if region != "" {
			o.Endpoint.Region = region
		}
	}
	if o.Endpoint.URL != "" {
		// The command a user types writes to the configured environment's S3: time it
		// only when that is the server the bench uses (the twin's).
		cli, overhead, cleanup, err := PrepareCLI(ctx, config.RepoRoot())
		if err != nil {
			return err
		}
		defer cleanup()
		o.CLI, o.CLIDir = []string{cli, "site:sync"}, config.RepoRoot()
		// aws s3 sync does not invalidate a CDN; nor does the timed command (and the shared
		// twin's edge cache is left alone).
		o.CLIEnv = []string{"ZOPS_SITE_INVALIDATE=0"}
		fmt.Fprintf(out, "site: bench: timing `%s site:sync DIR` as a whole process; `go tool mage` adds %.2f s to every command before mage starts it (go's tool check, then mage's go version, go env and go build up-to-date check), not counted\n", filepath.Base(cli), overhead.Seconds())
	} else {
		fmt.Fprintln(out, "site: bench: the command a user types is not timed: site:sync writes to the configured environment, and the twin's S3 is not up (cli_* ratios left out)")
	}
	res, err := Bench(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, res.Line())
	return nil
}

// owner is user@host, for the lock object.
func owner() string {
	u := os.Getenv("USER")
	if u == "" {
		u = fmt.Sprintf("uid%d", os.Getuid())
	}
	h, _ := os.Hostname()
	return u + "@" + h
}
