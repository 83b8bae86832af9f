package loadtest

import (
	"context"
	"io"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

// ReadOptions reads `mage loadtest`'s ZOPS_LOADTEST_* options (documented on the target).
func ReadOptions(r *opts.Reader) Options {
	o := Options{
		Scenario: r.String("ZOPS_LOADTEST_SCENARIO", "load"), Regions: r.String("ZOPS_LOADTEST_REGIONS", ""),
		Target: r.String("ZOPS_LOADTEST_TARGET", ""), Token: r.String("ZOPS_LOADTEST_TOKEN", ""),
		MintURL: r.String("ZOPS_LOADTEST_MINT_URL", ""), Thresholds: r.String("ZOPS_LOADTEST_THRESHOLDS", ""),
		Label: r.String("ZOPS_LOADTEST_LABEL", ""), ReportDir: r.String("ZOPS_LOADTEST_REPORT_DIR", ""),
		HotRatio: -1, NoTwinHooks: !r.Bool("ZOPS_LOADTEST_TWIN_HOOKS", true),
		RunnerProfile: r.String("ZOPS_LOADTEST_RUNNER_PROFILE", "zmanim-loadtest-runner"),
		Duration:      r.Duration("ZOPS_LOADTEST_DURATION", 0),
		MaxWorkers:    r.PositiveInt("ZOPS_LOADTEST_MAX_WORKERS", 0),
	}
	if r.Set("ZOPS_LOADTEST_MIN_SAMPLES") {
		switch n := r.Int("ZOPS_LOADTEST_MIN_SAMPLES", -1); {
		case n < 0:
			r.Problem("ZOPS_LOADTEST_MIN_SAMPLES", r.String("ZOPS_LOADTEST_MIN_SAMPLES", ""), "want a whole number of requests, 0 for no minimum")
		case n == 0:
			o.MinSamples = -1 // off
		default:
			o.MinSamples = n
		}
	}
	if v := r.String("ZOPS_LOADTEST_DURATION", ""); v != "" && o.Duration <= 0 && validDuration(v) {
		r.Problem("ZOPS_LOADTEST_DURATION", v, "want a positive duration such as 90s or 2h")
	}
	if r.Set("ZOPS_LOADTEST_HOT_RATIO") {
		v := r.String("ZOPS_LOADTEST_HOT_RATIO", "")
		if f := r.Float("ZOPS_LOADTEST_HOT_RATIO", -1); f < 0 || f > 1 {
			r.Problem("ZOPS_LOADTEST_HOT_RATIO", v, "want a fraction between 0 and 1")
		} else {
			o.HotRatio = f
		}
	}
	return o
}

// LoadtestTarget is `mage loadtest`.
func LoadtestTarget(ctx context.Context, out io.Writer) error {
	r := opts.New()
	o := ReadOptions(r)
	if err := r.Err(); err != nil {
		return err
	}
	env, err := config.Load()
	if err != nil {
		return err
	}
	o.Out = out
	_, err = Execute(ctx, env, o)
	return err
}

// ReadBenchOptions reads bench:loadgen's options: ZOPS_BENCH_ROUNDS (rounds per variant,
// default 12), ZOPS_BENCH_ROUND (length of one round, default 3s), ZOPS_BENCH_RATE (arrivals
// per second in a round, default 1000).
func ReadBenchOptions(r *opts.Reader) BenchOptions {
	o := BenchOptions{
		Rounds: r.PositiveInt("ZOPS_BENCH_ROUNDS", 12), Round: r.Duration("ZOPS_BENCH_ROUND", 3*time.Second),
		Rate: r.Float("ZOPS_BENCH_RATE", 1000), CheckRate: 500,
	}
	if v := r.String("ZOPS_BENCH_ROUND", ""); v != "" && o.Round <= 0 && validDuration(v) {
		r.Problem("ZOPS_BENCH_ROUND", v, "want a positive duration such as 3s")
	}
	if v := r.String("ZOPS_BENCH_RATE", ""); v != "" && o.Rate <= 0 {
		r.Problem("ZOPS_BENCH_RATE", v, "want a positive number of requests per second, e.g. 1000")
	}
	return o
}

// BenchLoadgenTarget is bench:loadgen.
func BenchLoadgenTarget(ctx context.Context, out io.Writer) error {
	r := opts.New()
	o := ReadBenchOptions(r)
	if err := r.Err(); err != nil {
		return err
	}
	_, err := BenchLoadgen(ctx, o, out)
	return err
}

func validDuration(v string) bool { _, err := time.ParseDuration(v); return err == nil }
