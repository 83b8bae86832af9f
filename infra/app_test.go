package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/stacks/cost"
)

// The app is built and synthesized once per test binary (TestMain); every test reads the
// shared templates. One synth costs ~6-40 s, the assertions milliseconds each.
var (
	cfg      *config.Env
	stacks   *Stacks
	asmDir   string
	tmpl     = map[string]assertions.Template{}
	raw      = map[string]map[string]any{}
	synthDur time.Duration
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "infra test setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	var err error
	cfg, err = config.LoadWith(config.Options{Env: "prod", Root: ".."})
	if err != nil {
		return 0, err
	}
	asmDir, err = os.MkdirTemp("", "zmanim-infra-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(asmDir)
	start := time.Now()
	app, s, err := NewApp(cfg, Options{OutDir: asmDir, GitHubRepo: "shtetl/zmanim-ops"})
	if err != nil {
		return 0, err
	}
	app.Synth(nil)
	stacks = s
	for _, st := range s.All {
		part := strings.TrimPrefix(*st.StackName(), "zmanim-"+cfg.Name+"-")
		tmpl[part] = assertions.Template_FromStack(st, nil)
		b, err := os.ReadFile(filepath.Join(asmDir, *st.ArtifactId()+".template.json"))
		if err != nil {
			return 0, err
		}
		var t map[string]any
		if err := json.Unmarshal(b, &t); err != nil {
			return 0, err
		}
		raw[part] = t
	}
	synthDur = time.Since(start)
	fmt.Printf("infra tests: one synth of %d stacks took %s\n", len(s.All), synthDur.Round(time.Millisecond))
	return m.Run(), nil
}

// has asserts a resource of typ with props (assertions.Match semantics) in the stack part.
func has(t *testing.T, part, typ string, props any) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: no %s matching: %v", part, typ, r)
		}
	}()
	tmpl[part].HasResourceProperties(jsii.String(typ), props)
}

// count asserts the number of resources of typ in part.
func count(t *testing.T, part, typ string, n int) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", part, r)
		}
	}()
	tmpl[part].ResourceCountIs(jsii.String(typ), jsii.Number(float64(n)))
}

// res returns the resources of typ in part by logical id.
func res(part, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range raw[part]["Resources"].(map[string]any) {
		m := r.(map[string]any)
		if m["Type"] == typ {
			out[id] = m
		}
	}
	return out
}

// one returns the only resource of typ in part.
func one(t *testing.T, part, typ string) (string, map[string]any) {
	t.Helper()
	rs := res(part, typ)
	if len(rs) != 1 {
		t.Fatalf("%s: want one %s, have %d", part, typ, len(rs))
	}
	for id, r := range rs {
		return id, r
	}
	return "", nil
}

func props(r map[string]any) map[string]any { return r["Properties"].(map[string]any) }

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// 7.1.2 + 7.1.3: every stack is synthesized for prod, in its region.
func TestStory7_1_2_3_StacksForProd(t *testing.T) {
	want := map[string]string{
		PartDNS: CertificateRegion, PartNetwork: cfg.Region, PartCompute: cfg.Region, PartEdge: cfg.Region,
		PartStorage: cfg.Region, PartObservability: cfg.Region, PartGitHubOIDC: cfg.Region,
	}
	if len(stacks.All) != len(want) {
		t.Fatalf("want %d stacks, have %d", len(want), len(stacks.All))
	}
	for _, st := range stacks.All {
		part := strings.TrimPrefix(*st.StackName(), "zmanim-prod-")
		region, ok := want[part]
		if !ok {
			t.Errorf("unexpected stack %s", *st.StackName())
			continue
		}
		if *st.Region() != region {
			t.Errorf("%s in %s, want %s", part, *st.Region(), region)
		}
		if _, ok := raw[part]; !ok {
			t.Errorf("%s: no template", part)
		}
	}
}

// Bad input is refused before synthesis with an error naming the setting and the fix.
func TestBadInputAtSynth(t *testing.T) {
	good := *cfg
	tests := []struct {
		name string
		mod  func(e *config.Env, o *Options)
		want string
	}{
		{"missing AMI parameter", func(e *config.Env, o *Options) { e.Instance.AMIParameter = "" }, "instance.ami_parameter is missing"},
		{"AMI parameter not a name", func(e *config.Env, o *Options) { e.Instance.AMIParameter = "ami-0123" }, "is not an SSM parameter name"},
		{"domain not in hosted zone", func(e *config.Env, o *Options) { e.Domain = "zmanim.example.org" }, `domain "zmanim.example.org" is not in hosted_zone "shtetl.io"`},
		{"region other than configured", func(e *config.Env, o *Options) { o.AmbientRegion = "us-west-2" }, "points at us-west-2"},
		{"twin environment", func(e *config.Env, o *Options) { e.Kind = config.KindTwin }, "synthesize prod"},
		{"bad repo", func(e *config.Env, o *Options) { o.GitHubRepo = "zmanim" }, "owner/name"},
		{"HS256 authorizer", func(e *config.Env, o *Options) {
			a := e.API.Authorizers[config.AuthorizerJWT]
			a.Algorithms = []string{"HS256"}
			e.API.Authorizers = map[string]config.JWTAuthorizer{config.AuthorizerJWT: a}
		}, "RSA signatures only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := good
			o := Options{GitHubRepo: "shtetl/zmanim-ops"}
			tc.mod(&e, &o)
			_, _, err := NewApp(&e, o)
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadInput containing %q", err, tc.want)
			}
		})
	}
	if err := Validate(cfg, Options{GitHubRepo: "shtetl/zmanim-ops", AmbientRegion: cfg.Region}); err != nil {
		t.Fatalf("prod config refused: %v", err)
	}
}

// infra:cost: the synthesized templates price within the budget in the selected variant, every
// billed item is a line, a smaller budget is refused with the largest items named, and a
// resource the pricer does not know is refused.
func TestCostWithinBudgetAndRefusals(t *testing.T) {
	est, err := PriceAssembly("..", cfg, asmDir, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := est.Check(); err != nil {
		t.Fatalf("at the configured budget: %v", err)
	}
	var b strings.Builder
	est.Write(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, fmt.Sprintf("cost: variant=%s monthly_usd=%.2f budget_usd=44 ", cfg.Budget.Variant, est.Total)) {
		t.Errorf("last line %q", last)
	}
	for _, want := range []string{"EC2 m7g.medium", "EBS root gp3 10 GB", "EBS gp3 20 GB", "public IPv4", "Route 53 hosted zone", "HTTPS health check",
		"CloudFront HTTPS requests", "Origin Shield requests", "API Gateway HTTP API requests", "Cloud Map", "CloudWatch alarms", "S3 zmanim-backups-prod",
		"EBS snapshots of kept AMIs", "what-if 20x traffic", "gate checks variant " + cfg.Budget.Variant} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("breakdown lacks %q", want)
		}
	}
	over := *est
	over.Budget = 30
	if err := over.Check(); !errors.Is(err, cost.ErrOverBudget) || !strings.Contains(err.Error(), "m7g.medium") {
		t.Errorf("budget 30: err = %v", err)
	}
	ts, _ := cost.LoadTemplates(asmDir)
	ts = append(ts, cost.Template{Stack: "extra", Resources: map[string]cost.Resource{"Nat": {Type: "AWS::EC2::NatGateway"}}})
	prices, _ := cost.LoadPrices(mustLatest(t))
	in, err := cost.InputFor(ts, prices, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cost.Run(in); !errors.Is(err, cost.ErrUnpriced) || !strings.Contains(err.Error(), "AWS::EC2::NatGateway") {
		t.Errorf("NAT gateway: err = %v", err)
	}
}

func mustLatest(t *testing.T) string {
	f, err := cost.LatestPrices("prices", cfg.Region)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// No IAM users or access keys anywhere: deploys use GitHub OIDC (7.1.5 without stored secrets).
func TestStory7_1_5_NoLongLivedKeys(t *testing.T) {
	for part := range raw {
		for _, typ := range []string{"AWS::IAM::User", "AWS::IAM::AccessKey"} {
			if n := len(res(part, typ)); n > 0 {
				t.Errorf("%s: %d %s", part, n, typ)
			}
		}
	}
}

var _ = awscdk.Stack(nil)
