package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/stacks/cost"
)

// Options are the infra settings the shared configuration does not hold; each has a default
// and a ZOPS_* variable (see OptionsFromEnv).
type Options struct {
	// HostedZoneID imports an existing Route 53 zone (ZOPS_HOSTED_ZONE_ID); empty creates the
	// public zone for hosted_zone in the Dns stack (delegate shtetl.io to its name servers).
	HostedZoneID string
	// GitHubRepo is owner/name of the repository whose workflows may deploy (ZOPS_GITHUB_REPO).
	GitHubRepo string
	// GitHubOIDCProviderARN reuses an existing token.actions.githubusercontent.com provider
	// (ZOPS_GITHUB_OIDC_PROVIDER_ARN); an account holds at most one per URL.
	GitHubOIDCProviderARN string
	// Account pins the stacks to an account (config account, else $CDK_DEFAULT_ACCOUNT).
	Account string
	// AmbientRegion is the region the caller's AWS setup points at ($CDK_DEFAULT_REGION,
	// $AWS_REGION, $AWS_DEFAULT_REGION); it must equal the configured region.
	AmbientRegion string
	// AvailabilityZone of the public subnet; default <region>a.
	AvailabilityZone string
	// HealthCheckRegions are the Route 53 checker regions (at least 3; fewer checks, fewer requests).
	HealthCheckRegions []string
	// Nag applies the cdk-nag AwsSolutions checks.
	Nag bool
	// OutDir is the cloud assembly directory (default $CDK_OUTDIR or cdk.out).
	OutDir string
	// PricesFile is the price table (default prices/eu-west-1-*.json, newest); SkipCost skips pricing.
	PricesFile string
	SkipCost   bool
}

// OptionsFromEnv reads the ZOPS_* variables and the CDK/AWS region variables.
func OptionsFromEnv() (Options, error) {
	o := Options{
		HostedZoneID:          os.Getenv("ZOPS_HOSTED_ZONE_ID"),
		GitHubRepo:            envOr("ZOPS_GITHUB_REPO", "shtetl/zmanim-ops"),
		GitHubOIDCProviderARN: os.Getenv("ZOPS_GITHUB_OIDC_PROVIDER_ARN"),
		Account:               os.Getenv("CDK_DEFAULT_ACCOUNT"),
		OutDir:                os.Getenv("CDK_OUTDIR"),
		PricesFile:            os.Getenv("ZOPS_PRICES"),
	}
	for _, k := range []string{"CDK_DEFAULT_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		if v := os.Getenv(k); v != "" {
			o.AmbientRegion = v
			break
		}
	}
	return o, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Stack names, per environment: zmanim-<env>-<part>.
const (
	PartNetwork       = "network"
	PartStorage       = "storage"
	PartCompute       = "compute"
	PartEdge          = "edge"
	PartDNS           = "dns"
	PartObservability = "observability"
	PartGitHubOIDC    = "github-oidc"
)

// CertificateRegion is where CloudFront looks for its certificate.
const CertificateRegion = "us-east-1"

// StackName returns the stack name of a part.
func StackName(env, part string) string { return "zmanim-" + env + "-" + part }

// ErrBadInput marks problems with the configuration or options found before synthesis.
var ErrBadInput = errors.New("bad infra input")

var repoRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// Validate lists every problem with cfg and o at once; each names the setting and the fix.
func Validate(cfg *config.Env, o Options) error {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if cfg.Kind != config.KindAWS {
		add("environment %q is kind %q: the stacks describe an AWS account; synthesize prod (ZOPS_ENV=prod)", cfg.Name, cfg.Kind)
	}
	if cfg.Instance.AMIParameter == "" {
		add("instance.ami_parameter is missing: set the SSM parameter the Packer pipeline writes the AMI id to, e.g. %s", cfg.SSM(config.ParamAMI))
	} else if !strings.HasPrefix(cfg.Instance.AMIParameter, "/") || strings.Contains(cfg.Instance.AMIParameter, " ") {
		add("instance.ami_parameter %q is not an SSM parameter name; write it like %s", cfg.Instance.AMIParameter, cfg.SSM(config.ParamAMI))
	}
	if cfg.HostedZone == "" || (cfg.Domain != cfg.HostedZone && !strings.HasSuffix(cfg.Domain, "."+cfg.HostedZone)) {
		add("domain %q is not in hosted_zone %q: use a name under the zone (e.g. zmanim.%s) or change hosted_zone", cfg.Domain, cfg.HostedZone, cfg.HostedZone)
	}
	if cfg.APIDomain != "" && cfg.HostedZone != "" && cfg.APIDomain != cfg.HostedZone && !strings.HasSuffix(cfg.APIDomain, "."+cfg.HostedZone) {
		add("api_domain %q is not in hosted_zone %q: use a name under the zone", cfg.APIDomain, cfg.HostedZone)
	}
	if o.AmbientRegion != "" && o.AmbientRegion != cfg.Region {
		add("region: your AWS setup points at %s (CDK_DEFAULT_REGION/AWS_REGION) but environment %q is configured for %s: unset the variable or set region in %s (ZOPS_REGION)", o.AmbientRegion, cfg.Name, cfg.Region, config.FileName)
	}
	if o.Account != "" && cfg.Account != "" && o.Account != cfg.Account {
		add("account: your credentials are for %s but environment %q is configured for %s: switch profile or fix account", o.Account, cfg.Name, cfg.Account)
	}
	if !repoRe.MatchString(o.GitHubRepo) {
		add("github repo %q: write it as owner/name (ZOPS_GITHUB_REPO)", o.GitHubRepo)
	}
	if o.HostedZoneID != "" && !regexp.MustCompile(`^Z[A-Z0-9]{4,32}$`).MatchString(o.HostedZoneID) {
		add("hosted zone id %q is not a Route 53 zone id (Z...): fix ZOPS_HOSTED_ZONE_ID", o.HostedZoneID)
	}
	if len(o.HealthCheckRegions) > 0 && len(o.HealthCheckRegions) < 3 {
		add("health check regions: Route 53 needs at least 3, got %d", len(o.HealthCheckRegions))
	}
	if cfg.Instance.Arch != "arm64" {
		add("instance.arch %q: the production box is Graviton (m7g); use arm64", cfg.Instance.Arch)
	}
	if msg := scheduleProblem(cfg.Backup.Schedule); msg != "" {
		add("%s", msg)
	}
	if cfg.Budget.MonthlyUSD <= 0 {
		add("budget.monthly_usd %v: the AWS Budgets budget needs a positive monthly amount", cfg.Budget.MonthlyUSD)
	}
	for name, a := range cfg.API.Authorizers {
		if !strings.HasPrefix(a.Issuer, "https://") {
			add("api.authorizers.%s.issuer %q: API Gateway needs an https issuer", name, a.Issuer)
		}
		for _, alg := range a.Algorithms {
			if !strings.HasPrefix(alg, "RS") {
				add("api.authorizers.%s.algorithms: %s: HTTP API JWT authorizers verify RSA signatures only; use RS256", name, alg)
			}
		}
	}
	for i, b := range cfg.Edge.Behaviors {
		if _, err := allowedMethods(b.AllowedMethods); err != nil {
			add("edge.behaviors[%d] (%s): %v", i, b.PathPattern, err)
		}
	}
	if len(p) > 0 {
		return fmt.Errorf("%w:\n  - %s", ErrBadInput, strings.Join(p, "\n  - "))
	}
	return nil
}

// withDefaults fills the options that default from the configuration.
func withDefaults(cfg *config.Env, o Options) Options {
	if o.Account == "" {
		o.Account = cfg.Account
	}
	if cfg.Account != "" {
		// The configured account wins for naming; Validate has checked they agree.
		o.Account = cfg.Account
	}
	if o.AvailabilityZone == "" {
		o.AvailabilityZone = cfg.Region + "a"
	}
	if len(o.HealthCheckRegions) == 0 {
		o.HealthCheckRegions = []string{"eu-west-1", "us-east-1", "us-west-1"}
	}
	if o.GitHubRepo == "" {
		o.GitHubRepo = "shtetl/zmanim-ops"
	}
	if o.OutDir == "" {
		o.OutDir = "cdk.out"
	}
	return o
}

// Stacks are the app's stacks.
type Stacks struct {
	Dns           *DnsStack
	Network       *NetworkStack
	Compute       *ComputeStack
	Edge          *EdgeStack
	Storage       *StorageStack
	Observability *ObservabilityStack
	GithubOidc    *GithubOidcStack
	// All in deployment order.
	All []awscdk.Stack

	env, ssmPrefix string
	buckets        config.Buckets
}

// NewApp validates cfg and o and builds every stack into a new app.
func NewApp(cfg *config.Env, o Options) (awscdk.App, *Stacks, error) {
	if err := Validate(cfg, o); err != nil {
		return nil, nil, err
	}
	o = withDefaults(cfg, o)
	out, err := filepath.Abs(o.OutDir)
	if err != nil {
		return nil, nil, fmt.Errorf("new app: %w", err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(out), Context: &map[string]any{
		// Keep CloudFormation exports between the stacks (producer-protecting), explicitly.
		"@aws-cdk/core:defaultCrossStackReferences": "strong",
	}})
	env := func(region string) *awscdk.Environment {
		e := &awscdk.Environment{Region: jsii.String(region)}
		if o.Account != "" {
			e.Account = jsii.String(o.Account)
		}
		return e
	}
	props := func(part, region, desc string) awscdk.StackProps {
		return awscdk.StackProps{
			Env:                   env(region),
			StackName:             jsii.String(StackName(cfg.Name, part)),
			Description:           jsii.String("zmanim-ops " + cfg.Name + ": " + desc),
			CrossRegionReferences: jsii.Bool(true),
			Tags:                  &map[string]*string{"project": jsii.String("zmanim"), "env": jsii.String(cfg.Name)},
		}
	}
	s := &Stacks{env: cfg.Name, ssmPrefix: strings.TrimSuffix(cfg.SSMPrefix, "/"), buckets: cfg.Buckets}
	s.Network = NewNetworkStack(app, StackName(cfg.Name, PartNetwork), &NetworkStackProps{
		StackProps:       props(PartNetwork, cfg.Region, "VPC, public subnet, S3 gateway endpoint, security groups (story 7.3)"),
		Env:              cfg,
		AvailabilityZone: o.AvailabilityZone,
	})
	s.Dns = NewDnsStack(app, StackName(cfg.Name, PartDNS), &DnsStackProps{
		StackProps:         props(PartDNS, CertificateRegion, "Route 53 zone, CloudFront certificate, /health check (story 7.8)"),
		Env:                cfg,
		HostedZoneID:       o.HostedZoneID,
		HealthCheckRegions: o.HealthCheckRegions,
	})
	s.Compute = NewComputeStack(app, StackName(cfg.Name, PartCompute), &ComputeStackProps{
		StackProps:       props(PartCompute, cfg.Region, "the box, data volume, Elastic IP, role, SSM config (stories 7.4, 7.9)"),
		Env:              cfg,
		Network:          s.Network,
		AvailabilityZone: o.AvailabilityZone,
	})
	s.Edge = NewEdgeStack(app, StackName(cfg.Name, PartEdge), &EdgeStackProps{
		StackProps:  props(PartEdge, cfg.Region, "CloudFront and the API Gateway HTTP API (stories 7.6, 7.7)"),
		Env:         cfg,
		Network:     s.Network,
		Compute:     s.Compute,
		Certificate: s.Dns.Certificate,
		Zone:        s.Dns.Zone,
	})
	s.Storage = NewStorageStack(app, StackName(cfg.Name, PartStorage), &StorageStackProps{
		StackProps:      props(PartStorage, cfg.Region, "backups, releases and static buckets (story 7.5)"),
		Env:             cfg,
		Network:         s.Network,
		Compute:         s.Compute,
		DistributionArn: s.Edge.Distribution.DistributionArn(),
	})
	s.Observability = NewObservabilityStack(app, StackName(cfg.Name, PartObservability), &ObservabilityStackProps{
		StackProps: props(PartObservability, cfg.Region, "alarms and dashboard"),
		Env:        cfg,
		Compute:    s.Compute,
		Edge:       s.Edge,
	})
	s.GithubOidc = NewGithubOidcStack(app, StackName(cfg.Name, PartGitHubOIDC), &GithubOidcStackProps{
		StackProps:  props(PartGitHubOIDC, cfg.Region, "GitHub Actions OIDC deploy role"),
		Env:         cfg,
		Repo:        o.GitHubRepo,
		ProviderArn: o.GitHubOIDCProviderARN,
		Compute:     s.Compute,
		Edge:        s.Edge,
	})
	s.All = []awscdk.Stack{s.Dns.Stack, s.Network.Stack, s.Compute.Stack, s.Edge.Stack, s.Storage.Stack, s.Observability.Stack, s.GithubOidc.Stack}
	if o.Nag {
		applyNag(app, s)
	}
	return app, s, nil
}

// StackInfo summarizes one synthesized stack.
type StackInfo struct {
	Name, Region string
	Resources    int
	TemplateFile string
}

// Result is what Synth produced.
type Result struct {
	OutDir                     string
	Stacks                     []StackInfo
	Elapsed                    time.Duration
	NagWarnings, NagSuppressed int
	// Cost is the estimate (nil with SkipCost).
	Cost *cost.Estimate
}

// Synth loads environment envName from the repository at root, builds the app, writes the
// cloud assembly and checks it.
func Synth(root, envName string, o Options) (*Result, error) {
	start := time.Now()
	cfg, err := config.LoadWith(config.Options{Env: envName, Root: root})
	if err != nil {
		return nil, err
	}
	app, stacks, err := NewApp(cfg, o)
	if err != nil {
		return nil, err
	}
	asm := app.Synth(nil)
	res := &Result{OutDir: *asm.Directory()}
	for _, st := range stacks.All {
		art := asm.GetStackArtifact(st.ArtifactId())
		n := 0
		if m, ok := art.Template().(map[string]any); ok {
			if r, ok := m["Resources"].(map[string]any); ok {
				n = len(r)
			}
		}
		res.Stacks = append(res.Stacks, StackInfo{Name: *st.StackName(), Region: *st.Region(), Resources: n, TemplateFile: filepath.Join(res.OutDir, *art.TemplateFile())})
	}
	res.Elapsed = time.Since(start)
	if o.Nag {
		sum, err := NagFindings(res.OutDir)
		if err != nil {
			return nil, err
		}
		res.NagWarnings, res.NagSuppressed = len(sum.Warnings), len(sum.Suppressed)
		if len(sum.Errors) > 0 {
			lines := make([]string, len(sum.Errors))
			for i, f := range sum.Errors {
				lines[i] = f.String()
			}
			return res, fmt.Errorf("%w: %d unsuppressed AwsSolutions error(s); fix them or add a suppression with its reason in infra/nag.go:\n  - %s", ErrNag, len(lines), strings.Join(lines, "\n  - "))
		}
	}
	if !o.SkipCost {
		est, err := PriceAssembly(root, cfg, res.OutDir, o.PricesFile)
		if err != nil {
			return res, err
		}
		res.Cost = est
		if err := est.Check(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// ErrNag is returned (wrapped) when cdk-nag reports unsuppressed errors.
var ErrNag = errors.New("cdk-nag")

// PriceAssembly prices the templates in dir with the newest price table for the region (or
// pricesFile) at the usage the configuration implies: every variant, the one budget.variant
// selects, and the 5x and 20x what-ifs.
func PriceAssembly(root string, cfg *config.Env, dir, pricesFile string) (*cost.Estimate, error) {
	if pricesFile == "" {
		f, err := cost.LatestPrices(filepath.Join(root, "infra", "prices"), cfg.Region)
		if err != nil {
			return nil, err
		}
		pricesFile = f
	}
	prices, err := cost.LoadPrices(pricesFile)
	if err != nil {
		return nil, err
	}
	ts, err := cost.LoadTemplates(dir)
	if err != nil {
		return nil, err
	}
	in, err := cost.InputFor(ts, prices, cfg)
	if err != nil {
		return nil, err
	}
	return cost.Run(in)
}
