// Package testrun runs every test of the project against the real components: it brings the
// local twin up, exports each component's address for internal/testenv, requires integration
// components (a missing one fails instead of skipping), and runs `go test` in the main module
// and in each nested module (infra, ...).
package testrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/deps"
	"github.com/shtetl/zmanim-ops/internal/testenv"
	"github.com/shtetl/zmanim-ops/internal/tools"
	"github.com/shtetl/zmanim-ops/internal/twin"
)

// Modules are the nested Go modules tested besides the main one (their own go.mod).
var Modules = []string{"infra", "packer"}

// Env returns the testenv variables for a running twin.
func Env(ctx context.Context, env *config.Env, t *twin.Twin) ([]string, error) {
	sec := t.Secrets()
	restic, err := tools.Ensure(ctx, "restic")
	if err != nil {
		return nil, err
	}
	cfgPath := env.File
	if cfgPath == "" {
		cfgPath = filepath.Join(config.RepoRoot(), config.FileName)
	}
	p := env.Twin.Ports
	return []string{
		testenv.PostgresURL + "=" + t.PGURL("postgres"),
		testenv.RedisAddr + "=" + fmt.Sprintf("%s:%d", env.Twin.Host, p.Redis),
		testenv.S3Endpoint + "=" + env.URL(p.S3),
		testenv.S3AccessKey + "=" + sec.S3AccessKey,
		testenv.S3SecretKey + "=" + sec.S3SecretKey,
		testenv.S3Region + "=" + env.Region,
		testenv.PGWALArchive + "=" + t.PGWALArchive(),
		testenv.AWSEndpoint + "=" + env.URL(p.AWS),
		testenv.EdgeURL + "=" + env.URL(p.Edge),
		testenv.APIURL + "=" + env.URL(p.Box),
		testenv.JWTIssuerURL + "=" + env.URL(p.JWT),
		testenv.ResticBin + "=" + restic,
		testenv.TwinConfigFile + "=" + cfgPath,
		"ZOPS_TEST_ORIGIN_VERIFY=" + sec.OriginVerify,
		"ZOPS_TEST_CONTROL_URL=" + env.URL(p.Control),
		"ZOPS_REQUIRE_INTEGRATION=1",
	}, nil
}

// Options select what runs.
type Options struct {
	Packages []string // default ./...
	Run      string   // -run pattern
	Short    bool
	Verbose  bool
	Timeout  time.Duration
	Twin     twin.Options // twin:up's options, for the twin the tests run against
	Out      io.Writer
}

// Run brings the twin up and runs the tests.
func Run(ctx context.Context, o Options) error {
	// Every program the tests run, checked (and installed as root) before any build.
	if err := deps.Ensure(ctx, "test"); err != nil {
		return err
	}
	env, err := config.Load()
	if err != nil {
		return err
	}
	t, err := twin.NewWith(env, o.Out, o.Twin)
	if err != nil {
		return err
	}
	if err := t.Up(ctx); err != nil {
		return err
	}
	vars, err := Env(ctx, env, t)
	if err != nil {
		return err
	}
	if o.Timeout == 0 {
		o.Timeout = 40 * time.Minute
	}
	pkgs := o.Packages
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	args := []string{"test", "-count=1", "-timeout", o.Timeout.String()}
	if o.Run != "" {
		args = append(args, "-run", o.Run)
	}
	if o.Short {
		args = append(args, "-short")
	}
	if o.Verbose {
		args = append(args, "-v")
	}
	root := config.RepoRoot()
	var failed []string
	run := func(dir string, pk []string) {
		start := time.Now()
		fmt.Fprintf(o.Out, "\n== go %s %s (in %s)\n", strings.Join(args, " "), strings.Join(pk, " "), dir)
		cmd := exec.CommandContext(ctx, "go", append(args, pk...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), vars...)
		cmd.Stdout, cmd.Stderr = o.Out, o.Out
		if err := cmd.Run(); err != nil {
			failed = append(failed, dir)
		}
		fmt.Fprintf(o.Out, "== %s: %s\n", dir, time.Since(start).Round(time.Second))
	}
	run(root, pkgs)
	if len(o.Packages) == 0 {
		for _, m := range Modules {
			if _, err := os.Stat(filepath.Join(root, m, "go.mod")); err == nil {
				run(filepath.Join(root, m), []string{"./..."})
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("tests failed in %s", strings.Join(failed, ", "))
	}
	return nil
}
