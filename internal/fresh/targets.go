package fresh

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/deps"
	"github.com/shtetl/zmanim-ops/internal/tools"
)

// Bench is `go tool mage bench:fresh`: options from the environment, the figures as the last
// line; a command that failed in the root fails the target after that line.
func Bench(ctx context.Context) error {
	if err := deps.Ensure(ctx, "bench:fresh"); err != nil {
		return err
	}
	o := Options{
		Repo:     os.Getenv("ZOPS_FRESH_REPO"),
		Branch:   os.Getenv("ZOPS_FRESH_BRANCH"),
		WorkDir:  os.Getenv("ZOPS_FRESH_DIR"),
		Only:     os.Getenv("ZOPS_FRESH_ONLY"),
		Keep:     os.Getenv("ZOPS_FRESH_KEEP") == "1",
		CacheDir: filepath.Join(tools.CacheDir(), "fresh"),
		Out:      os.Stdout,
	}
	if o.Repo == "" {
		o.Repo = config.RepoRoot()
	}
	if o.Only != "" && o.Only != "release" {
		return fmt.Errorf("ZOPS_FRESH_ONLY=%q: the only quick mode is release", o.Only)
	}
	res, err := Run(ctx, o)
	if err != nil {
		return err
	}
	for _, t := range res.FailedTests {
		fmt.Println("fresh: failed:", t)
	}
	fmt.Println(res.Line())
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
