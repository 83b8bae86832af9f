package testrun

import (
	"context"
	"io"

	"github.com/shtetl/zmanim-ops/internal/opts"
	"github.com/shtetl/zmanim-ops/internal/twin"
)

// ReadOptions reads `mage test`'s options: ZOPS_TEST_PKGS, ZOPS_TEST_RUN, ZOPS_TEST_SHORT,
// ZOPS_TEST_VERBOSE, ZOPS_TEST_TIMEOUT, and twin:up's (the tests bring the twin up).
func ReadOptions(r *opts.Reader) Options {
	return Options{
		Packages: r.List("ZOPS_TEST_PKGS"),
		Run:      r.String("ZOPS_TEST_RUN", ""),
		Short:    r.Bool("ZOPS_TEST_SHORT", false),
		Verbose:  r.Bool("ZOPS_TEST_VERBOSE", false),
		Timeout:  r.Duration("ZOPS_TEST_TIMEOUT", 0),
		Twin:     twin.ReadOptions(r),
	}
}

// TestTarget is `mage test`.
func TestTarget(ctx context.Context, out io.Writer) error {
	r := opts.New()
	o := ReadOptions(r)
	if err := r.Err(); err != nil {
		return err
	}
	o.Out = out
	return Run(ctx, o)
}
