package cost

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// testPrices has round values so each expected amount below can be worked out by hand.
func testPrices() *Prices {
	v := map[string]float64{
		KeyHoursPerMonth: 730, InstanceKey("m7g.medium"): 0.04, SavingsPlanKey("m7g.medium"): 0.03, VolumeKey("gp3"): 0.1,
		KeyEBSSnapshot: 0.05, KeyIPv4Hour: 0.005, KeyHostedZone: 0.5, KeyHealthCheck: 0.75, KeyHealthCheckFeature: 2,
		KeyAPIGWPerMillion: 1, KeyCFHTTPSPer10k: 0.01, KeyShieldPer10k: 0.01, KeyCFDataOutGB: 0.1, KeyCFFunctionPerM: 0.1,
		KeyCFInvalidationPath: 0.005, KeyCFFreeInvalidations: 1000, KeyCFFreeRequests: 0, KeyCFFreeGBOut: 1e6, KeyCFFreeFunctions: 0,
		KeyAlarmMetric: 0.1, KeyDashboard: 3, KeyCustomMetric: 0.3, KeyLogsIngestGB: 0.5, KeyLogsStoreGB: 0,
		KeyFreeAlarmMetrics: 10, KeyFreeDashboards: 3, KeyFreeCustomMetrics: 10, KeyFreeLogsGB: 1e6,
		KeyS3GBMonth: 0.02, KeyS3PutPer1k: 0.005, KeyS3GetPer1k: 0.0004, KeyCloudMapInstance: 0.1, KeyCloudMapDiscoverM: 1,
	}
	p := &Prices{Region: "eu-west-1", Currency: "USD", Recorded: "2026-11-30", File: "test", Values: map[string]Price{}}
	for k, x := range v {
		p.Values[k] = Price{Value: x, Unit: "test unit", Source: "test", Read: "2026-11-30"}
	}
	return p
}

var testBuckets = BucketNames{Backups: "b-backups", Releases: "b-releases", Static: "b-static"}

// fixture is the production shape in small: one box with a root and a data volume, an
// Elastic IP, a zone, an HTTPS health check from 3 regions, a distribution with an API and an
// S3 origin both behind Origin Shield and the directory-index function, the HTTP API with its
// Cloud Map instance, alarms and a dashboard, three buckets (backups versioned for 30 days).
func fixture() []Template {
	m := func(kv ...any) map[string]any {
		out := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	shield := m("Enabled", true, "OriginShieldRegion", "eu-west-1")
	return []Template{
		{Stack: "compute", Resources: map[string]Resource{
			"Box": {Type: "AWS::EC2::Instance", Properties: m("InstanceType", "m7g.medium",
				"BlockDeviceMappings", []any{m("DeviceName", "/dev/xvda", "Ebs", m("VolumeSize", 10.0, "VolumeType", "gp3"))})},
			"Data":    {Type: "AWS::EC2::Volume", Properties: m("Size", 20.0, "VolumeType", "gp3")},
			"EIP":     {Type: "AWS::EC2::EIP"},
			"MapInst": {Type: "AWS::ServiceDiscovery::Instance"},
			"Role":    {Type: "AWS::IAM::Role"},
		}},
		{Stack: "dns", Resources: map[string]Resource{
			"Zone": {Type: "AWS::Route53::HostedZone"},
			"HC": {Type: "AWS::Route53::HealthCheck", Properties: m("HealthCheckConfig", m("Type", "HTTPS", "FullyQualifiedDomainName", "z.example",
				"ResourcePath", "/health", "RequestInterval", 30.0, "Regions", []any{"eu-west-1", "us-east-1", "us-west-1"}))},
			"Writer": {Type: "Custom::CrossRegionExportWriter"},
		}},
		{Stack: "edge", Resources: map[string]Resource{
			"Api": {Type: "AWS::ApiGatewayV2::Api", Properties: m("ProtocolType", "HTTP")},
			"Dist": {Type: "AWS::CloudFront::Distribution", Properties: m("DistributionConfig", m(
				"Origins", []any{m("Id", "api", "CustomOriginConfig", m(), "OriginShield", shield), m("Id", "s3", "S3OriginConfig", m(), "OriginShield", shield)},
				"DefaultCacheBehavior", m("FunctionAssociations", []any{m("EventType", "viewer-request")})))},
		}},
		{Stack: "observability", Resources: map[string]Resource{
			"A1": {Type: "AWS::CloudWatch::Alarm"}, "A2": {Type: "AWS::CloudWatch::Alarm"}, "D": {Type: "AWS::CloudWatch::Dashboard"},
		}},
		{Stack: "storage", Resources: map[string]Resource{
			"Backups": {Type: "AWS::S3::Bucket", Properties: m("BucketName", "b-backups", "VersioningConfiguration", m("Status", "Enabled"),
				"LifecycleConfiguration", m("Rules", []any{m("Status", "Enabled", "NoncurrentVersionExpiration", m("NoncurrentDays", 30.0))}))},
			"Releases": {Type: "AWS::S3::Bucket", Properties: m("BucketName", "b-releases")},
			"Static":   {Type: "AWS::S3::Bucket", Properties: m("BucketName", "b-static")},
		}},
	}
}

func testUsage(t *testing.T) Usage {
	t.Helper()
	env, err := config.LoadWith(config.Options{Env: "prod", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	u, err := UsageFor(env, 730)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func run(t *testing.T, ts []Template, u Usage, variant string) *Estimate {
	t.Helper()
	e, err := Run(Input{Templates: ts, Prices: testPrices(), Usage: u, Buckets: testBuckets, Budget: 44, Variant: variant, SelectedBy: "test", WhatIf: []float64{5, 20}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// sum is a result's total before rounding to cents, so small usage terms can be checked.
func sum(r *Result) float64 {
	s := 0.0
	for _, l := range r.Lines {
		s += l.USD
	}
	return s
}

// Each usage term changes the total by the amount worked out from its definition.
func TestUsageTermsChangeTheTotal(t *testing.T) {
	base := testUsage(t)
	hcRequests := 3 * base.HealthCheckersPerRegion * 120 * 730 // regions x checkers x requests an hour x hours
	cases := []struct {
		name string
		mod  func(u *Usage)
		want float64
	}{
		{"one more kept AMI: its snapshot", func(u *Usage) { u.AMIImagesKept++ }, base.AMISnapshotGB * 0.05},
		{"bigger AMI snapshots", func(u *Usage) { u.AMISnapshotGB += 2 }, base.AMIImagesKept * 2 * 0.05},
		{"10 more PUTs per WAL shipment", func(u *Usage) { u.WALRun.Put += 10 }, 8760 * 10 * 0.005 / 1000},
		{"10 more LISTs per WAL shipment (PUT rate)", func(u *Usage) { u.WALRun.List += 10 }, 8760 * 10 * 0.005 / 1000},
		{"10 more GETs per WAL shipment", func(u *Usage) { u.WALRun.Get += 10 }, 8760 * 10 * 0.0004 / 1000},
		{"100 more GETs per daily backup", func(u *Usage) { u.DailyRun.Get += 100 }, 730.0 / 24 * 100 * 0.0004 / 1000},
		{"100 more PUTs per base backup", func(u *Usage) { u.BaseRun.Put += 100 }, 730.0 / 168 * 100 * 0.005 / 1000},
		{"100 more GETs per verify", func(u *Usage) { u.VerifyRun.Get += 100 }, 730.0 / 24 * 100 * 0.0004 / 1000},
		// The backups bucket is versioned for 30 days: a day's share of the repository (keep_daily
		// 7 + 1 days) is deleted daily and stays 30 days as noncurrent versions.
		{"1 GB more backups: stored, and its churn kept 30 days", func(u *Usage) { u.BackupsGB++ }, 0.02 + 1.0/8*30*0.02},
		{"longer retention: less churn", func(u *Usage) { u.KeepDaily = 15 }, (base.BackupsGB/16 - base.BackupsGB/8) * 30 * 0.02},
		{"churn set explicitly", func(u *Usage) { u.BackupChurnGBDay = base.BackupsGB/8 + 0.1 }, 0.1 * 30 * 0.02},
		{"10 more site syncs", func(u *Usage) { u.SiteSyncsMonth += 10 }, 10 * (1 + base.SiteChangedObjects) * 0.005 / 1000},
		{"100 more changed objects per sync", func(u *Usage) { u.SiteChangedObjects += 100 }, base.SiteSyncsMonth * 100 * 0.005 / 1000},
		{"10 more releases", func(u *Usage) { u.ReleasesMonth += 10 }, 10*(base.ReleaseObjects+2)*0.005/1000 + 10*base.ReleaseObjects*0.0004/1000},
		{"one more checker per region: CloudFront, shield, API Gateway and Cloud Map requests", func(u *Usage) { u.HealthCheckersPerRegion++ },
			hcRequests / base.HealthCheckersPerRegion * (0.01/1e4 + 0.01/1e4 + 1/1e6 + 1/1e6)},
		{"5 more custom metrics: 3 beyond the free 10", func(u *Usage) { u.CustomMetrics += 5 }, 3 * 0.3},
		{"other workloads use the free metrics", func(u *Usage) { u.OtherCustomMetrics = 10 }, base.CustomMetrics * 0.3},
		{"other workloads use 9 free alarm metrics: 1 of our 2 billed", func(u *Usage) { u.OtherAlarmMetrics = 9 }, 0.1},
		{"1 GB more box logs (free tier not reached)", func(u *Usage) { u.BoxLogGBMonth++ }, 0},
	}
	before := sum(run(t, fixture(), base, "").Results[0])
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := base
			tc.mod(&u)
			got := sum(run(t, fixture(), u, "").Results[0]) - before
			if math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("total changed by %.6f, want %.6f", got, tc.want)
			}
		})
	}
}

// Viewer traffic: doubling the average share doubles each traffic-priced line.
func TestTrafficScales(t *testing.T) {
	u := testUsage(t)
	e1 := run(t, fixture(), u, "")
	u.AverageShare *= 2
	e2 := run(t, fixture(), u, "")
	viewer := 50 * 0.02 * 730 * 3600
	line := func(e *Estimate, name string) float64 {
		for _, l := range e.Results[0].Lines {
			if l.Name == name {
				return l.USD
			}
		}
		t.Fatalf("no line %q", name)
		return 0
	}
	if d := line(e2, "CloudFront HTTPS requests") - line(e1, "CloudFront HTTPS requests"); math.Abs(d-viewer/1e4*0.01) > 1e-9 {
		t.Errorf("CloudFront requests changed by %.4f, want %.4f", d, viewer/1e4*0.01)
	}
	// API misses: 60% of viewers, 30% miss the edge, half of those miss the shield.
	if d := line(e2, "API Gateway HTTP API requests") - line(e1, "API Gateway HTTP API requests"); math.Abs(d-viewer*0.6*0.3*0.5/1e6) > 1e-9 {
		t.Errorf("API Gateway changed by %.4f, want %.4f", d, viewer*0.6*0.3*0.5/1e6)
	}
}

func TestUnpricedResourcesFail(t *testing.T) {
	u := testUsage(t)
	cases := []struct {
		name   string
		extra  Resource
		detail string
		want   error
	}{
		{"NAT gateway is not silently free", Resource{Type: "AWS::EC2::NatGateway"}, "AWS::EC2::NatGateway", ErrUnpriced},
		{"load balancer", Resource{Type: "AWS::ElasticLoadBalancingV2::LoadBalancer"}, "neither priced nor known to be free", ErrUnpriced},
		{"interface endpoint", Resource{Type: "AWS::EC2::VPCEndpoint", Properties: map[string]any{"VpcEndpointType": "Interface"}}, "interface VPC endpoints", ErrUnpriced},
		{"bucket without a usage assumption", Resource{Type: "AWS::S3::Bucket", Properties: map[string]any{"BucketName": "logs"}}, `bucket "logs"`, ErrUnpriced},
		{"instance type without a price", Resource{Type: "AWS::EC2::Instance", Properties: map[string]any{"InstanceType": "x9.huge"}}, "ec2.x9.huge.hour", ErrPrices},
		{"gp3 above its free baseline", Resource{Type: "AWS::EC2::Volume", Properties: map[string]any{"Size": 1.0, "VolumeType": "gp3", "Iops": 6000.0}}, "above the 3,000 IOPS", ErrUnpriced},
		{"detailed monitoring", Resource{Type: "AWS::EC2::Instance", Properties: map[string]any{"InstanceType": "m7g.medium", "Monitoring": true}}, "detailed monitoring", ErrUnpriced},
		{"customer-managed KMS key", Resource{Type: "AWS::KMS::Key"}, "AWS::KMS::Key", ErrUnpriced},
		{"volume type without a price", Resource{Type: "AWS::EC2::Volume", Properties: map[string]any{"Size": 1.0, "VolumeType": "io2"}}, "ebs.io2.gb_month", ErrPrices},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := append(fixture(), Template{Stack: "extra", Resources: map[string]Resource{"X": tc.extra}})
			_, err := Run(Input{Templates: ts, Prices: testPrices(), Usage: u, Buckets: testBuckets, Budget: 44})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("err = %v, want %v naming %q", err, tc.want, tc.detail)
			}
		})
	}
}

// The variants change exactly what they trade, and the gate checks the selected one.
func TestVariantsAndGate(t *testing.T) {
	u := testUsage(t)
	e := run(t, fixture(), u, "savings-plan-1yr")
	byName := map[string]*Result{}
	for _, r := range e.Results {
		byName[r.Variant.Name] = r
	}
	od := sum(byName[OnDemand])
	if d := od - sum(byName["savings-plan-1yr"]); math.Abs(d-730*(0.04-0.03)) > 1e-9 {
		t.Errorf("savings plan saves %.4f, want %.4f", d, 730*(0.04-0.03))
	}
	if d := od - sum(byName["http-health-check"]); math.Abs(d-2) > 1e-9 {
		t.Errorf("HTTP health check saves %.4f, want one feature (2.00)", d)
	}
	// Without the shield on the API origin: no shield fee for API misses and health checks, and
	// the shield's hits on cacheable API misses now reach API Gateway and Cloud Map.
	hc := 3 * u.HealthCheckersPerRegion * 120 * 730
	apiMiss := 50 * 0.02 * 730 * 3600 * 0.6 * 0.3
	want := (apiMiss+hc)/1e4*0.01 - apiMiss*0.5*(1+1)/1e6
	if d := od - sum(byName["shield-s3-only"]); math.Abs(d-want) > 1e-9 {
		t.Errorf("shield-s3-only saves %.6f, want %.6f", d, want)
	}
	if e.SelectedResult().Variant.Name != "savings-plan-1yr" || e.Total != byName["savings-plan-1yr"].Total {
		t.Errorf("selected %s total %.2f", e.SelectedResult().Variant.Name, e.Total)
	}
	var b strings.Builder
	e.Write(&b)
	out := b.String()
	for _, want := range []string{"on-demand, every line:", "EC2 m7g.medium on-demand", "S3 b-backups noncurrent versions", "EBS snapshots of kept AMIs",
		"* savings-plan-1yr", "trades: Route 53 probes /health over HTTP", "what-if 5x traffic", "what-if 20x traffic", "gate checks variant savings-plan-1yr (test)",
		"wal_run=put=6 list=14 get=6", "health_checkers_per_region=2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "cost: variant=savings-plan-1yr monthly_usd=") || !strings.Contains(last, " budget_usd=44 ") || !strings.HasSuffix(last, " fits=true") {
		t.Errorf("last line %q", last)
	}

	if err := e.Check(); err != nil {
		t.Errorf("selected variant within budget: %v", err)
	}
	e.Budget = 10
	if err := e.Check(); !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "variant savings-plan-1yr") || !strings.Contains(err.Error(), "EC2 m7g.medium") {
		t.Errorf("over budget: %v", err)
	}
	if _, err := Run(Input{Templates: fixture(), Prices: testPrices(), Usage: u, Buckets: testBuckets, Budget: 44, Variant: "spot"}); !errors.Is(err, ErrVariant) || !strings.Contains(err.Error(), "savings-plan-1yr") {
		t.Errorf("unknown variant: %v", err)
	}
}

// Every price file in the repository carries a unit, a source and a read date for every value;
// an undocumented value is refused.
func TestPriceFilesAreSourced(t *testing.T) {
	files, _ := filepath.Glob("../../../infra/prices/*.json")
	if len(files) == 0 {
		t.Fatal("no price files in infra/prices")
	}
	for _, f := range files {
		p, err := LoadPrices(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range p.Keys() {
			v := p.Values[k]
			if strings.TrimSpace(v.Source) == "" || strings.TrimSpace(v.Unit) == "" || v.Read == "" {
				t.Errorf("%s: %s lacks a source, unit or read date", f, k)
			}
		}
	}
	p := testPrices()
	p.Values["x"] = Price{Value: 1, Unit: "USD", Source: "not verified:  ", Read: "2026-11-30"}
	p.Values["y"] = Price{Value: 1, Source: "page", Read: "2026-11-30"}
	if err := p.Check(); !errors.Is(err, ErrPrices) || !strings.Contains(err.Error(), "x: no source") || !strings.Contains(err.Error(), "y: no unit") {
		t.Errorf("check = %v", err)
	}
}

// The repository's table prices the production templates' keys, and reports its unverified
// values by their "not verified:" prefix.
func TestUnverifiedPricesAreListed(t *testing.T) {
	p := testPrices()
	p.Values[KeyEBSSnapshot] = Price{Value: 0.05, Unit: "USD", Source: "not verified: no stored page", Read: "2026-11-30"}
	e, err := Run(Input{Templates: fixture(), Prices: p, Usage: testUsage(t), Buckets: testBuckets, Budget: 44})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Unverified) != 1 || e.Unverified[0] != KeyEBSSnapshot {
		t.Errorf("unverified = %v", e.Unverified)
	}
}

func TestRunsPerMonthFromSchedules(t *testing.T) {
	u := testUsage(t)
	if u.WALRuns != 8760 || math.Abs(u.DailyRuns-730.0/24) > 1e-9 || math.Abs(u.BaseRuns-730.0/168) > 1e-9 || math.Abs(u.VerifyRuns-730.0/24) > 1e-9 {
		t.Errorf("runs: wal %.1f daily %.2f base %.2f verify %.2f", u.WALRuns, u.DailyRuns, u.BaseRuns, u.VerifyRuns)
	}
	for cal, want := range map[string]float64{"*-*-* 03:00:00 UTC": 1, "daily": 1, "Sun *-*-* 04:00:00": 1.0 / 7, "hourly": 24, "": 0} {
		if got, err := runsPerDay(cal); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", cal, got, err, want)
		}
	}
	if _, err := runsPerDay("*-*-* 00/6:00:00"); err == nil {
		t.Error("a repeating calendar was guessed instead of refused")
	}
	env, _ := config.LoadWith(config.Options{Env: "prod", Root: t.TempDir()})
	env.Backup.WALInterval = config.Duration(10 * time.Minute)
	u2, _ := UsageFor(env, 730)
	if u2.WALRuns != 4380 {
		t.Errorf("WAL every 10m: %.0f runs", u2.WALRuns)
	}
}

// The gate refuses a variant whose architecture change the templates do not have, and accepts
// it once they do; a purchase (the Savings Plan) is never in the templates.
func TestGateRefusesUndeployedVariants(t *testing.T) {
	u := testUsage(t)
	for _, name := range []string{"http-health-check", "shield-s3-only", "cheapest"} {
		e := run(t, fixture(), u, name)
		if err := e.Check(); !errors.Is(err, ErrNotDeployed) {
			t.Errorf("%s: err = %v", name, err)
		}
		var b strings.Builder
		e.Write(&b)
		if !strings.HasSuffix(strings.TrimSpace(b.String()), "fits=false") || !strings.Contains(b.String(), "REFUSED") {
			t.Errorf("%s: output ends %q", name, lastLine(b.String()))
		}
	}
	ts := fixture()
	hc := ts[1].Resources["HC"]
	hc.Properties["HealthCheckConfig"].(map[string]any)["Type"] = "HTTP"
	if e := run(t, ts, u, "http-health-check"); errors.Is(e.Check(), ErrNotDeployed) || len(e.SelectedResult().Undeployed) != 0 {
		t.Errorf("HTTP check deployed: %v %v", e.Check(), e.SelectedResult().Undeployed)
	}
	dist := ts[2].Resources["Dist"].Properties["DistributionConfig"].(map[string]any)
	delete(dist["Origins"].([]any)[0].(map[string]any), "OriginShield")
	if e := run(t, ts, u, "cheapest"); e.Check() != nil { // 36.61 with the test prices
		t.Errorf("cheapest deployed: %v", e.Check())
	}
	if e := run(t, fixture(), u, "savings-plan-1yr"); len(e.SelectedResult().Undeployed) != 0 {
		t.Errorf("savings plan: %v", e.SelectedResult().Undeployed)
	}
}

// With an unverified Savings Plan rate, the output says up to which rate the verdict holds.
func TestBreakEvenOfAnUnverifiedRate(t *testing.T) {
	p := testPrices()
	p.Values[SavingsPlanKey("m7g.medium")] = Price{Value: 0.03, Unit: "USD", Source: "not verified: estimate", Read: "2026-11-30"}
	e, err := Run(Input{Templates: fixture(), Prices: p, Usage: testUsage(t), Buckets: testBuckets, Budget: 44, Variant: "savings-plan-1yr"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	e.Write(&b)
	want := fmt.Sprintf("at most $%.4f an hour", 0.03+(44-e.Total)/730)
	if !strings.Contains(b.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, b.String())
	}
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}
