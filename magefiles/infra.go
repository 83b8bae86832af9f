package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/shtetl/zmanim-ops/internal/stacks"
)

// Infra works on the production stacks: the CDK app in infra/ (Go, its own module).
type Infra mg.Namespace

// Synth synthesizes every stack of the prod environment into infra/cdk.out and checks the budget (see infra:cost).
//
// The app refuses bad input before synthesizing (missing AMI parameter, domain outside the
// hosted zone, AWS_REGION/CDK_DEFAULT_REGION other than the configured region) and fails when
// the priced templates exceed budget.monthly_usd.
//
// Options (environment):
//
//	ZOPS_ENV                       environment (default prod; local has nothing to synthesize)
//	ZOPS_INFRA_OUT                 cloud assembly directory (default infra/cdk.out)
//	ZOPS_HOSTED_ZONE_ID            import this Route 53 zone instead of creating hosted_zone
//	ZOPS_GITHUB_REPO               owner/name allowed to assume the deploy role (default shtetl/zmanim-ops)
//	ZOPS_GITHUB_OIDC_PROVIDER_ARN  reuse an existing GitHub OIDC provider
//	ZOPS_PRICES                    price table (default the newest infra/prices/<region>-*.json)
func (Infra) Synth(ctx context.Context) error {
	return stacks.SynthTarget(ctx, os.Stdout)
}

// Cost answers "does it fit the budget?": every billed item, on-demand and the cheaper variants, the gate's verdict.
//
// Synthesizes the stacks, then prices every resource of the templates (an unknown type fails
// instead of counting as free) plus the usage the toolkit itself creates: restic's requests
// from the backup and WAL schedules, site syncs, releases, Route 53 health-check traffic from
// the checker regions and interval, AMI snapshots, noncurrent versions of versioned buckets.
// Usage assumptions live under cost: in zmanim-ops.yaml and are all printed. Every price comes
// from infra/prices/<region>-<date>.json with its unit and source; values not verified against
// a public source are listed. Prints on-demand line by line, then each variant that keeps the
// architecture (HTTP health check, Origin Shield only for S3, 1-year Compute Savings Plan, all
// three) with its total and what it trades, the 5x and 20x what-if loads, and the gate's
// verdict on the variant budget.variant selects (refused when the stacks do not deploy its
// changes; a Savings Plan is a purchase, not in the templates). Last line:
// `cost: variant=V monthly_usd=X budget_usd=Y on_demand_usd=Z fits=B`. Fails above the budget.
//
// Options (environment): as for infra:synth (ZOPS_PRICES picks another price table).
func (Infra) Cost(ctx context.Context) error {
	return stacks.CostTarget(ctx, os.Stdout)
}

// Prices records a new dated price table from the AWS Price List Query API (needs AWS credentials; refuses without).
//
// Calls pricing:GetProducts (us-east-1 endpoint) for every on-demand value of the newest
// infra/prices/<region>-*.json (instances, EBS, snapshots, public IPv4, S3, API Gateway,
// CloudWatch, CloudFront Europe, Route 53) and writes infra/prices/<region>-<today>.json, each
// refreshed value with its service, filters, SKU and offer version as its source. Values the
// price list does not serve unambiguously (free tiers, Savings Plans, Route 53 features) keep
// their recorded source and are listed as kept. Without credentials nothing is written.
//
// Options (environment):
//
//	ZOPS_ENV      environment whose region is priced (default prod)
//	ZOPS_PRICES   the table to refresh (default the newest for the region)
func (Infra) Prices(ctx context.Context) error {
	return stacks.PricesTarget(ctx, os.Stdout)
}

// Check runs cdk-nag AwsSolutions (zero unsuppressed errors; every suppression has a reason), the budget and the infra tests.
//
// Options (environment): as for infra:synth, and
//
//	ZOPS_INFRA_SKIP_TESTS=1   skip the assertion tests (go test in infra/)
func (Infra) Check(ctx context.Context) error {
	return stacks.CheckTarget(ctx, os.Stdout)
}

// Diff shows what infra:deploy would change in the AWS account (needs AWS credentials).
//
// Uses the CDK CLI pinned in infra/package.json (installed with npm ci into the tool cache).
//
// Options (environment): as for infra:synth, and
//
//	ZOPS_STACKS   only these stacks (space-separated, e.g. "zmanim-prod-edge")
func (Infra) Diff(ctx context.Context) error {
	return stacks.DiffTarget(ctx, os.Stdout)
}

// Deploy deploys every stack to the AWS account in dependency order (needs AWS credentials; refuses without).
//
// The first deploy needs `cdk bootstrap` in eu-west-1 and us-east-1 and runs from an operator
// machine; it creates the GitHub OIDC role that later tag builds use. Operators put the
// secrets first (SecureString: clerk-secret-key, postgres-password, restic-password; String:
// origin-verify-secret, which API Gateway resolves) under ssm_prefix, and the Packer pipeline
// the AMI id.
//
// Options (environment): as for infra:diff, and
//
//	ZOPS_DEPLOY_APPROVE=1   do not ask before IAM/security-group widening (CI)
func (Infra) Deploy(ctx context.Context) error {
	return stacks.DeployTarget(ctx, os.Stdout)
}
