package main

import (
	"flag"
	"fmt"
	"os"
)

// main runs the app. jsii snapshots the environment for its Node process while packages
// initialize, so the Node 20 end-of-life banner can only be silenced by the caller: the mage
// targets set JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 (internal/stacks.appEnv).
func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		os.Exit(1)
	}
}

// run synthesizes the app into -out (or $CDK_OUTDIR when the CDK CLI runs us), optionally with
// the cdk-nag AwsSolutions checks, and prices the result against the budget.
func run(args []string) error {
	fs := flag.NewFlagSet("infra", flag.ContinueOnError)
	out := fs.String("out", "", "cloud assembly directory (default $CDK_OUTDIR or cdk.out)")
	nag := fs.Bool("nag", false, "apply the cdk-nag AwsSolutions checks and fail on unsuppressed errors")
	root := fs.String("root", "..", "repository root holding zmanim-ops.yaml")
	env := fs.String("env", "prod", "environment to synthesize")
	printCost := fs.Bool("cost", false, "print the cost breakdown (the budget is always checked)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts, err := OptionsFromEnv()
	if err != nil {
		return err
	}
	opts.Nag = *nag
	if *out != "" {
		opts.OutDir = *out
	}
	res, err := Synth(*root, *env, opts)
	if err != nil {
		if res != nil && res.Cost != nil {
			res.Cost.Write(os.Stdout)
		}
		return err
	}
	fmt.Printf("synth: %d stacks in %s (%s)\n", len(res.Stacks), res.OutDir, res.Elapsed.Round(1e6))
	for _, s := range res.Stacks {
		fmt.Printf("  %-28s %s  %3d resources\n", s.Name, s.Region, s.Resources)
	}
	if *nag {
		fmt.Printf("nag: AwsSolutions errors=0 warnings=%d suppressed=%d\n", res.NagWarnings, res.NagSuppressed)
	}
	switch {
	case res.Cost != nil && *printCost:
		res.Cost.Write(os.Stdout) // last line: cost: variant=V monthly_usd=X budget_usd=Y ...
	case res.Cost != nil:
		fmt.Printf("cost: variant=%s monthly_usd=%.2f budget_usd=%g (go tool mage infra:cost for every line and the variants)\n", res.Cost.SelectedResult().Variant.Name, res.Cost.Total, res.Cost.Budget)
	}
	return nil
}
