package stacks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// App runs the CDK app in <Root>/infra, a Go module of its own, with `go run`: the main module
// never links CDK. The app validates its input, synthesizes every stack, optionally applies
// the cdk-nag AwsSolutions checks, and prices the templates against the budget.
type App struct {
	Root   string    // repository root; default config.RepoRoot()
	Env    string    // environment; default $ZOPS_ENV or "prod"
	OutDir string    // cloud assembly; default <Root>/infra/cdk.out
	Stdout io.Writer // default os.Stdout
	Stderr io.Writer // default os.Stderr
}

// SynthOptions select what a synth also does.
type SynthOptions struct {
	Nag  bool // cdk-nag AwsSolutions; unsuppressed errors fail
	Cost bool // print the cost breakdown (the budget is checked either way)
}

// ErrSynth is returned (wrapped) when the app refuses its input or its checks fail; the
// app's own message (printed) says what and how to fix it.
var ErrSynth = errors.New("infra synth failed")

func (a App) withDefaults() App {
	if a.Root == "" {
		a.Root = config.RepoRoot()
	}
	if a.Env == "" || a.Env == "local" {
		a.Env = "prod" // the stacks describe AWS; the twin has nothing to synthesize
	}
	if a.OutDir == "" {
		a.OutDir = filepath.Join(a.Root, "infra", "cdk.out")
	}
	if a.Stdout == nil {
		a.Stdout = os.Stdout
	}
	if a.Stderr == nil {
		a.Stderr = os.Stderr
	}
	return a
}

// Dir is the CDK app's module directory.
func (a App) Dir() string { return filepath.Join(a.withDefaults().Root, "infra") }

// Synth runs the app and writes the cloud assembly to OutDir.
func (a App) Synth(ctx context.Context, o SynthOptions) error {
	a = a.withDefaults()
	args := []string{"run", ".", "-env", a.Env, "-root", a.Root, "-out", a.OutDir}
	if o.Nag {
		args = append(args, "-nag")
	}
	if o.Cost {
		args = append(args, "-cost")
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = a.Dir()
	cmd.Env = appEnv()
	cmd.Stdout, cmd.Stderr = a.Stdout, a.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("%w (exit %d after %s; the reason is printed above)", ErrSynth, ee.ExitCode(), time.Since(start).Round(time.Millisecond))
		}
		return fmt.Errorf("run the CDK app in %s: %w", cmd.Dir, err)
	}
	return nil
}

// Test runs the infra module's tests (one synth per test binary).
func (a App) Test(ctx context.Context) error {
	a = a.withDefaults()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "./...")
	cmd.Dir = a.Dir()
	cmd.Env = appEnv()
	cmd.Stdout, cmd.Stderr = a.Stdout, a.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("infra tests: %w", err)
	}
	return nil
}

// appEnv is the environment of the app: jsii's Node 20 end-of-life banner is silenced (Node 20
// synthesizes; upgrade to 22 when the machines do).
func appEnv() []string {
	env := os.Environ()
	for k, v := range map[string]string{
		"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
		"JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION":  "1",
	} {
		if os.Getenv(k) == "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// StackNames lists the stacks in an assembly directory (from its templates).
func StackNames(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.template.json"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		out = append(out, strings.TrimSuffix(filepath.Base(f), ".template.json"))
	}
	return out, nil
}
