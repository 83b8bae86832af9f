package fresh

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/deps"
	"github.com/shtetl/zmanim-ops/internal/opts"
	"github.com/shtetl/zmanim-ops/internal/tools"
)

// ReadOptions reads bench:fresh's options: ZOPS_FRESH_REPO, ZOPS_FRESH_BRANCH, ZOPS_FRESH_DIR,
// ZOPS_FRESH_ONLY (release: the quick mode), ZOPS_FRESH_KEEP.
func ReadOptions(r *opts.Reader) Options {
	o := Options{
		Repo:     r.String("ZOPS_FRESH_REPO", ""),
		Branch:   r.String("ZOPS_FRESH_BRANCH", ""),
		WorkDir:  r.String("ZOPS_FRESH_DIR", ""),
		Only:     r.String("ZOPS_FRESH_ONLY", ""),
		Keep:     r.Bool("ZOPS_FRESH_KEEP", false),
		CacheDir: filepath.Join(tools.CacheDir(), "fresh"),
	}
	if o.Only != "" && o.Only != "release" {
		r.Problem("ZOPS_FRESH_ONLY", o.Only, "the only quick mode is release")
	}
	return o
}

// BenchTarget is `go tool mage bench:fresh`: options from the environment, the figures as the
// last line; a command that failed in the root fails the target after that line.
func BenchTarget(ctx context.Context, out io.Writer) error {
	r := opts.New()
	o := ReadOptions(r)
	if err := r.Err(); err != nil {
		return err
	}
	if err := deps.Ensure(ctx, "bench:fresh"); err != nil {
		return err
	}
	o.Out = out
	if o.Repo == "" {
		o.Repo = config.RepoRoot()
	}
	res, err := Run(ctx, o)
	if err != nil {
		return err
	}
	for _, t := range res.FailedTests {
		fmt.Fprintln(out, "fresh: failed:", t)
	}
	fmt.Fprintln(out, res.Line())
	var bad []string
	if res.ReleaseExit != 0 {
		bad = append(bad, fmt.Sprintf("`%s` exited %d", Commands[0], res.ReleaseExit))
	}
	if res.TestRan && res.TestExit != 0 {
		bad = append(bad, fmt.Sprintf("`%s` exited %d", Commands[1], res.TestExit))
	}
	if len(bad) > 0 {
		return fmt.Errorf("fresh machine: %s (rerun with ZOPS_FRESH_KEEP=1 to inspect the root)", strings.Join(bad, "; "))
	}
	return nil
}
