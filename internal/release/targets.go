package release

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/deps"
	"github.com/shtetl/zmanim-ops/internal/loadtest"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

// ReadOptions reads release's ZOPS_* options (see the Options doc); Env, Root and Out are
// filled in by the targets.
func ReadOptions(r *opts.Reader) Options {
	o := Options{
		Version:    r.String("ZOPS_VERSION", ""),
		DryRun:     r.Bool("ZOPS_DRY_RUN", false),
		AllowDirty: r.Bool("ZOPS_ALLOW_DIRTY", false),
		Message:    r.String("ZOPS_MESSAGE", ""),
		NoSmoke:    !r.Bool("ZOPS_SMOKE", true),
		Who:        DefaultOwner(),
		API: APISource{
			Location: r.String("ZOPS_API_SOURCE", ""),
			Ref:      r.String("ZOPS_API_REF", ""),
			Package:  r.String("ZOPS_API_PACKAGE", ""),
		},
	}
	if o.API.Ref != "" && o.API.Location == "" {
		r.Problem("ZOPS_API_REF", o.API.Ref, "set ZOPS_API_SOURCE to the API's git URL too (a ref alone has nothing to select from)")
	}
	if p := o.API.Package; p != "" && !strings.HasPrefix(p, "./") && p != "." {
		r.Problem("ZOPS_API_PACKAGE", p, "give a package path relative to the source root, such as ./cmd/api")
	}
	if v := r.String("ZOPS_LOCK_WAIT", ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			// A bare number is seconds, as in earlier versions.
			if n, nerr := strconv.Atoi(v); nerr == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d < 0 {
			r.Problem("ZOPS_LOCK_WAIT", v, "want a duration such as 30s or 10m")
		} else {
			o.LockWait = d
		}
	}
	return o
}

// load reads the options and the configuration.
func load(out io.Writer) (Options, error) {
	r := opts.New()
	o := ReadOptions(r)
	if err := r.Err(); err != nil {
		return o, err
	}
	env, err := config.Load()
	if err != nil {
		return o, err
	}
	o.Env, o.Root, o.Out = env, config.RepoRoot(), out
	return o, nil
}

// prepare loads the options and, unless it is a dry run, checks the packages the release
// needs and starts the twin (startTwin, mage's once-only twin:up) when releasing to it.
func prepare(ctx context.Context, out io.Writer, startTwin func(context.Context) error) (Options, error) {
	o, err := load(out)
	if err != nil {
		return o, err
	}
	if err := deps.Ensure(ctx, "release"); err != nil && !o.DryRun {
		return o, err
	}
	if o.Env.IsTwin() && !o.DryRun && startTwin != nil {
		if err := startTwin(ctx); err != nil {
			return o, err
		}
	}
	return o, nil
}

// ReleaseTarget is `mage release`.
func ReleaseTarget(ctx context.Context, out io.Writer, startTwin func(context.Context) error) error {
	o, err := prepare(ctx, out, startTwin)
	if err != nil {
		return err
	}
	_, err = Release(ctx, o)
	return err
}

// RollbackTarget is `mage release:rollback VERSION`.
func RollbackTarget(ctx context.Context, out io.Writer, startTwin func(context.Context) error, version string) error {
	o, err := prepare(ctx, out, startTwin)
	if err != nil {
		return err
	}
	_, err = Rollback(ctx, o, version)
	return err
}

// HistoryTarget is `mage release:history`.
func HistoryTarget(ctx context.Context, out io.Writer) error {
	o, err := load(out)
	if err != nil {
		return err
	}
	return ShowHistory(ctx, o)
}

// BenchTarget is `mage bench:release`: it prints the benchmark's result line last.
func BenchTarget(ctx context.Context, out io.Writer, startTwin func(context.Context) error) error {
	o, err := load(out)
	if err != nil {
		return err
	}
	if !o.Env.IsTwin() {
		return fmt.Errorf("bench:release runs against the local twin only (ZOPS_ENV=%s)", o.Env.Name)
	}
	o.Version = "" // the bench names its own versions
	if o.LockWait == 0 {
		o.LockWait = 5 * time.Minute // queue behind a release that is running (e.g. a test)
	}
	r := opts.New()
	runs := r.PositiveInt("ZOPS_BENCH_RUNS", 5)
	if err := r.Err(); err != nil {
		return err
	}
	edge := o.Env.URL(o.Env.Twin.Ports.Edge)
	// A twin that is up is used as it is: twin:up would rebuild and restart a daemon other
	// users of the twin may be relying on.
	if startTwin != nil && loadtest.CheckReachable(ctx, edge) != nil {
		if err := startTwin(ctx); err != nil {
			return err
		}
	}
	res, err := BenchRelease(ctx, BenchOptions{Release: o, EdgeURL: edge, RPS: float64(o.Env.Load.TargetRPS()), Runs: runs, Out: out})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, res.Line())
	return nil
}
