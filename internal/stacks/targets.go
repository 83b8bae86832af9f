package stacks

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

// Target options (environment), read by the mage targets.
type TargetOptions struct {
	Env       string // ZOPS_ENV (default prod)
	OutDir    string // ZOPS_INFRA_OUT (default infra/cdk.out)
	SkipTests bool   // ZOPS_INFRA_SKIP_TESTS=1: infra:check runs only cdk-nag and the budget
	Approve   bool   // ZOPS_DEPLOY_APPROVE=1: deploy without asking about security changes (CI)
	Stacks    string // ZOPS_STACKS: deploy/diff only these (space-separated names or globs)
	Prices    string // ZOPS_PRICES: the price table infra:prices starts from
}

// ReadOptions reads the infra targets' ZOPS_* options.
func ReadOptions(r *opts.Reader) TargetOptions {
	return TargetOptions{
		Env:       r.String("ZOPS_ENV", ""),
		OutDir:    r.String("ZOPS_INFRA_OUT", ""),
		SkipTests: r.Bool("ZOPS_INFRA_SKIP_TESTS", false),
		Approve:   r.Bool("ZOPS_DEPLOY_APPROVE", false),
		Stacks:    r.String("ZOPS_STACKS", ""),
		Prices:    r.String("ZOPS_PRICES", ""),
	}
}

func readOptions() (TargetOptions, error) {
	r := opts.New()
	o := ReadOptions(r)
	return o, r.Err()
}

func (o TargetOptions) app(w io.Writer) App {
	return App{Env: o.Env, OutDir: o.OutDir, Stdout: w, Stderr: os.Stderr}.withDefaults()
}

// SynthTarget is infra:synth.
func SynthTarget(ctx context.Context, w io.Writer) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	return o.app(w).Synth(ctx, SynthOptions{})
}

// CostTarget is infra:cost: every line, the variants and the gate's verdict (cost.Estimate.Write).
func CostTarget(ctx context.Context, w io.Writer) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	return o.app(w).Synth(ctx, SynthOptions{Cost: true})
}

// PricesTarget is infra:prices: a new dated price table from the AWS Price List Query API.
func PricesTarget(ctx context.Context, w io.Writer) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	_, err = RefreshPrices(ctx, w, PricesOptions{Env: o.Env, Base: o.Prices})
	return err
}

// CheckTarget is infra:check: cdk-nag AwsSolutions with zero unsuppressed errors, the budget,
// and the infra assertion tests.
func CheckTarget(ctx context.Context, w io.Writer) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	a := o.app(w)
	if err := a.Synth(ctx, SynthOptions{Nag: true}); err != nil {
		return err
	}
	if o.SkipTests {
		fmt.Fprintln(w, "check: tests skipped (ZOPS_INFRA_SKIP_TESTS=1)")
		return nil
	}
	start := time.Now()
	if err := a.Test(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "check: infra tests passed in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// DiffTarget is infra:diff: what a deploy would change.
func DiffTarget(ctx context.Context, w io.Writer) error {
	return withCDK(ctx, w, func(c CDK, asm string, stacks []string) error {
		return c.Run(ctx, asm, append([]string{"diff"}, stacks...)...)
	})
}

// DeployTarget is infra:deploy: every stack (or ZOPS_STACKS) in dependency order.
func DeployTarget(ctx context.Context, w io.Writer) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	return withCDK(ctx, w, func(c CDK, asm string, stacks []string) error {
		approval := "broadening" // ask before widening IAM or security groups
		if o.Approve {
			approval = "never"
		}
		outputs := filepath.Join(asm, "outputs.json") // inside the git-ignored assembly
		args := append([]string{"deploy", "--require-approval", approval, "--outputs-file", outputs, "--ci"}, stacks...)
		if err := c.Run(ctx, asm, args...); err != nil {
			return err
		}
		fmt.Fprintf(w, "deploy: stack outputs in %s\n", outputs)
		return nil
	})
}

// withCDK refuses without credentials, synthesizes once and hands the assembly to the CLI.
func withCDK(ctx context.Context, w io.Writer, run func(CDK, string, []string) error) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	a := o.app(w)
	env, err := config.LoadWith(config.Options{Env: a.Env, Root: a.Root})
	if err != nil {
		return err
	}
	if err := CheckCredentials(ctx, env); err != nil {
		return err
	}
	if err := a.Synth(ctx, SynthOptions{}); err != nil {
		return err
	}
	stacks := []string{"--all"}
	if o.Stacks != "" {
		stacks = splitFields(o.Stacks)
	}
	return run(CDK{Root: a.Root, Stdout: w, Stderr: os.Stderr}, a.OutDir, stacks)
}

func splitFields(s string) []string {
	var out []string
	field := ""
	for _, r := range s + " " {
		if r == ' ' || r == ',' || r == '\t' {
			if field != "" {
				out = append(out, field)
			}
			field = ""
			continue
		}
		field += string(r)
	}
	return out
}
