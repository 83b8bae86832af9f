// Package cost prices synthesized CloudFormation templates against a dated regional price
// table (infra/prices/<region>-<date>.json) at a baseline usage derived from the configuration,
// and checks the total against the monthly budget. It reads template JSON only, so both the
// CDK app (infra/, its own module) and the mage targets use it without linking CDK.
package cost

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// Prices is a dated regional price table (infra/prices/<region>-<date>.json).
type Prices struct {
	Region        string             `json:"region"`
	Currency      string             `json:"currency"`
	Recorded      string             `json:"recorded"`
	Source        string             `json:"source"`
	HoursPerMonth float64            `json:"hours_per_month"`
	InstanceHour  map[string]float64 `json:"ec2_instance_hour"`
	EBSGBMonth    map[string]float64 `json:"ebs_gb_month"`
	IPv4Hour      float64            `json:"public_ipv4_hour"`

	HostedZoneMonth    float64 `json:"route53_hosted_zone_month"`
	HealthCheckMonth   float64 `json:"route53_health_check_month"`
	HealthFeatureMonth float64 `json:"route53_health_check_feature_month"`

	APIGWPerMillion float64 `json:"apigw_http_per_million"`

	CFHTTPSPer10k        float64 `json:"cloudfront_https_per_10k"`
	CFGBOut              float64 `json:"cloudfront_gb_out"`
	CFFunctionPerMillion float64 `json:"cloudfront_function_per_million"`
	ShieldPer10k         float64 `json:"origin_shield_per_10k"`
	CFFreeRequests       float64 `json:"cloudfront_free_requests"`
	CFFreeGBOut          float64 `json:"cloudfront_free_gb_out"`
	CFFreeFunctions      float64 `json:"cloudfront_free_function_invocations"`

	AlarmMetricMonth  float64 `json:"cloudwatch_alarm_metric_month"`
	DashboardMonth    float64 `json:"cloudwatch_dashboard_month"`
	CustomMetricMonth float64 `json:"cloudwatch_custom_metric_month"`
	LogsIngestGB      float64 `json:"cloudwatch_logs_ingest_gb"`
	LogsStoreGBMonth  float64 `json:"cloudwatch_logs_store_gb_month"`
	FreeAlarmMetrics  float64 `json:"cloudwatch_free_alarm_metrics"`
	FreeDashboards    float64 `json:"cloudwatch_free_dashboards"`
	FreeCustomMetrics float64 `json:"cloudwatch_free_custom_metrics"`
	FreeLogsGB        float64 `json:"cloudwatch_free_logs_gb"`

	S3GBMonth  float64 `json:"s3_standard_gb_month"`
	S3PutPer1k float64 `json:"s3_put_per_1k"`
	S3GetPer1k float64 `json:"s3_get_per_1k"`

	CloudMapInstanceMonth      float64 `json:"cloudmap_instance_month"`
	CloudMapDiscoverPerMillion float64 `json:"cloudmap_discover_per_million"`
}

// LoadPrices reads a price table.
func LoadPrices(path string) (*Prices, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load prices: %w", err)
	}
	var p Prices
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("load prices %s: %w", path, err)
	}
	if p.HoursPerMonth <= 0 || p.Region == "" {
		return nil, fmt.Errorf("load prices %s: region and hours_per_month are required", path)
	}
	return &p, nil
}

// LatestPrices returns the newest <region>-<date>.json in dir (dates sort as text).
func LatestPrices(dir, region string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, region+"-*.json"))
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("no price table for %s in %s: record one as %s-<yyyy-mm-dd>.json", region, dir, region)
	}
	sort.Strings(files)
	return files[len(files)-1], nil
}

// Usage is the baseline traffic and data the request- and storage-priced services are priced
// at. Requests derive from config's expected rate; the other figures are assumptions, printed
// with the estimate.
type Usage struct {
	// ExpectedRPS is config load.expected_rps: the busy-period rate load tests multiply.
	ExpectedRPS float64
	// AverageShare is the month's average rate as a share of ExpectedRPS.
	AverageShare float64
	// APIShare of viewer requests is /api/* (the rest is the static site).
	APIShare float64
	// APIEdgeHit and StaticEdgeHit are edge cache hit ratios; ShieldHit is Origin Shield's on edge misses.
	APIEdgeHit, StaticEdgeHit, ShieldHit float64
	// ResponseBytes is the average response size sent to viewers.
	ResponseBytes float64
	// AccessLogBytes per API request in the access log; BoxLogGBMonth from the CloudWatch agent.
	AccessLogBytes, BoxLogGBMonth float64
	// CheckersPerRegion is how many Route 53 checkers probe from each configured region; the
	// Route 53 API reference (HealthCheckConfig, "Request interval") says one checker per region
	// sends a request every interval.
	CheckersPerRegion float64
	// CloudMapLookupsPerRequest is DiscoverInstances calls per private-integration request.
	CloudMapLookupsPerRequest float64
	// BucketGB is stored data per bucket kind (backups, releases, static).
	BackupsGB, ReleasesGB, StaticGB float64
	// BackupPutsMonth are restic PUTs a month; CustomMetrics are the agent's and the backup's metrics.
	BackupPutsMonth, CustomMetrics float64
}

// DefaultUsage is the baseline for env.
func DefaultUsage(env *config.Env) Usage {
	return Usage{
		ExpectedRPS:               float64(env.Load.ExpectedRPS),
		AverageShare:              0.02,
		APIShare:                  0.6,
		APIEdgeHit:                0.7,
		StaticEdgeHit:             0.95,
		ShieldHit:                 0.5,
		ResponseBytes:             8 << 10,
		AccessLogBytes:            350,
		BoxLogGBMonth:             0.6,
		CheckersPerRegion:         1,
		CloudMapLookupsPerRequest: 1,
		BackupsGB:                 3,
		ReleasesGB:                0.3,
		StaticGB:                  0.05,
		BackupPutsMonth:           6000,
		CustomMetrics:             8,
	}
}

// AverageRPS is the month's average viewer request rate.
func (u Usage) AverageRPS() float64 { return u.ExpectedRPS * u.AverageShare }

// Item is one priced line.
type Item struct {
	Group, Name, Detail string
	USD                 float64
}

// Estimate is a priced set of templates.
type Estimate struct {
	Items  []Item
	Total  float64
	Budget float64
	Prices *Prices
	Usage  Usage
	// Sensitivity holds totals at other traffic levels (multiples of the baseline), for the
	// breakdown; set by the caller with AddSensitivity.
	Sensitivity []Point
}

// Point is a total at a multiple of the baseline traffic.
type Point struct {
	Factor, USD float64
}

// AddSensitivity prices ts again at each multiple of the baseline traffic.
func (e *Estimate) AddSensitivity(ts []Template, factors ...float64) error {
	for _, f := range factors {
		u := e.Usage
		u.AverageShare *= f
		o, err := Price(ts, e.Prices, u, e.Budget)
		if err != nil {
			return err
		}
		e.Sensitivity = append(e.Sensitivity, Point{Factor: f, USD: o.Total})
	}
	return nil
}

// ErrOverBudget is returned (wrapped) when the estimate exceeds the budget.
var ErrOverBudget = errors.New("monthly estimate exceeds the budget")

// ErrUnpriced is returned (wrapped) for a resource type the pricer does not know.
var ErrUnpriced = errors.New("unpriced resource")

// Check returns ErrOverBudget when the total exceeds the budget, naming the largest items.
func (e *Estimate) Check() error {
	if e.Total <= e.Budget {
		return nil
	}
	items := append([]Item(nil), e.Items...)
	sort.Slice(items, func(i, j int) bool { return items[i].USD > items[j].USD })
	var top []string
	for i := 0; i < len(items) && i < 3; i++ {
		top = append(top, fmt.Sprintf("%s %.2f", items[i].Name, items[i].USD))
	}
	return fmt.Errorf("%w: $%.2f > $%g (largest: %s); shrink the design or raise budget.monthly_usd in %s", ErrOverBudget, e.Total, e.Budget, strings.Join(top, ", "), config.FileName)
}

// Write prints the breakdown and, as the last line, `cost: monthly_usd=X budget_usd=Y`.
func (e *Estimate) Write(w io.Writer) {
	fmt.Fprintf(w, "cost: %s prices recorded %s; baseline %.2f req/s average (%.0f%% of expected %.0f req/s)\n",
		e.Prices.Region, e.Prices.Recorded, e.Usage.AverageRPS(), e.Usage.AverageShare*100, e.Usage.ExpectedRPS)
	groups := map[string]float64{}
	for _, it := range e.Items {
		fmt.Fprintf(w, "  %-13s %-58s %8.2f  %s\n", it.Group, it.Name, it.USD, it.Detail)
		groups[it.Group] += it.USD
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	var parts []string
	for _, g := range names {
		parts = append(parts, fmt.Sprintf("%s=%.2f", g, groups[g]))
	}
	fmt.Fprintf(w, "cost: by group %s\n", strings.Join(parts, " "))
	for _, p := range e.Sensitivity {
		fmt.Fprintf(w, "cost: at %gx baseline traffic (%.2f req/s) monthly_usd=%.2f\n", p.Factor, e.Usage.AverageRPS()*p.Factor, p.USD)
	}
	fmt.Fprintf(w, "cost: monthly_usd=%.2f budget_usd=%g\n", e.Total, e.Budget)
}

// Template is one synthesized stack template.
type Template struct {
	Stack     string
	Resources map[string]Resource
}

// Resource is a CloudFormation resource.
type Resource struct {
	Type       string         `json:"Type"`
	Properties map[string]any `json:"Properties"`
}

// LoadTemplates reads every *.template.json in an assembly directory.
func LoadTemplates(dir string) ([]Template, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.template.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no templates in %s: run `go tool mage infra:synth` first", dir)
	}
	sort.Strings(files)
	var out []Template
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("load template: %w", err)
		}
		var t struct {
			Resources map[string]Resource `json:"Resources"`
		}
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, fmt.Errorf("parse template %s: %w", f, err)
		}
		out = append(out, Template{Stack: strings.TrimSuffix(filepath.Base(f), ".template.json"), Resources: t.Resources})
	}
	return out, nil
}

// freeTypes cost nothing by themselves (or are priced through usage below).
var freeTypes = map[string]bool{
	"AWS::CDK::Metadata": true, "AWS::EC2::VPC": true, "AWS::EC2::Subnet": true, "AWS::EC2::RouteTable": true,
	"AWS::EC2::Route": true, "AWS::EC2::SubnetRouteTableAssociation": true, "AWS::EC2::InternetGateway": true,
	"AWS::EC2::VPCGatewayAttachment": true, "AWS::EC2::SecurityGroup": true, "AWS::EC2::SecurityGroupIngress": true,
	"AWS::EC2::SecurityGroupEgress": true, "AWS::EC2::VolumeAttachment": true, "AWS::EC2::EIPAssociation": true,
	"AWS::IAM::Role": true, "AWS::IAM::Policy": true, "AWS::IAM::InstanceProfile": true, "AWS::IAM::OIDCProvider": true,
	"AWS::IAM::ManagedPolicy": true, "AWS::Lambda::Function": true, "AWS::Lambda::Permission": true,
	"AWS::CertificateManager::Certificate": true, "AWS::Route53::RecordSet": true,
	"AWS::CloudFront::CachePolicy": true, "AWS::CloudFront::OriginAccessControl": true, "AWS::CloudFront::Function": true,
	"AWS::CloudFront::OriginRequestPolicy": true, "AWS::S3::BucketPolicy": true,
	"AWS::ApiGatewayV2::Route": true, "AWS::ApiGatewayV2::Integration": true, "AWS::ApiGatewayV2::Authorizer": true,
	"AWS::ApiGatewayV2::Stage": true, "AWS::ApiGatewayV2::VpcLink": true, "AWS::Logs::LogGroup": true,
	"AWS::SNS::Subscription": true, "AWS::SNS::Topic": true, "AWS::SNS::TopicPolicy": true,
	"AWS::ServiceDiscovery::HttpNamespace": true, "AWS::ServiceDiscovery::Service": true,
}

const secondsPerHour = 3600

// Price prices the templates at usage u for budget (USD a month).
func Price(ts []Template, p *Prices, u Usage, budget float64) (*Estimate, error) {
	e := &Estimate{Budget: budget, Prices: p, Usage: u}
	add := func(group, name, detail string, usd float64) {
		e.Items = append(e.Items, Item{Group: group, Name: name, Detail: detail, USD: usd})
	}
	month := p.HoursPerMonth
	var unpriced []string
	var (
		distributions, shield, functions bool
		httpAPIs, mapInstances           int
		alarmMetrics, dashboards         float64
		healthRequests                   float64
		healthToAPI                      bool
		buckets                          []string
	)
	for _, t := range ts {
		ids := make([]string, 0, len(t.Resources))
		for id := range t.Resources {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			r := t.Resources[id]
			where := t.Stack + "/" + id
			switch {
			case r.Type == "AWS::EC2::Instance":
				typ, _ := r.Properties["InstanceType"].(string)
				h, ok := p.InstanceHour[typ]
				if !ok {
					unpriced = append(unpriced, fmt.Sprintf("%s: instance type %q has no price in the table", where, typ))
					continue
				}
				add("compute", "EC2 "+typ+" ("+where+")", fmt.Sprintf("%.0f h x $%.4f", month, h), month*h)
				for _, bd := range list(r.Properties["BlockDeviceMappings"]) {
					ebs, _ := asMap(bd)["Ebs"].(map[string]any)
					if ebs == nil {
						continue
					}
					gb, vt := num(ebs["VolumeSize"]), str(ebs["VolumeType"], "gp2")
					pr, ok := p.EBSGBMonth[vt]
					if !ok {
						unpriced = append(unpriced, fmt.Sprintf("%s: EBS type %q has no price", where, vt))
						continue
					}
					add("storage", fmt.Sprintf("EBS root %s %.0f GB (%s)", vt, gb, where), fmt.Sprintf("%.0f GB x $%.3f", gb, pr), gb*pr)
				}
			case r.Type == "AWS::EC2::Volume":
				gb, vt := num(r.Properties["Size"]), str(r.Properties["VolumeType"], "gp2")
				pr, ok := p.EBSGBMonth[vt]
				if !ok {
					unpriced = append(unpriced, fmt.Sprintf("%s: EBS type %q has no price", where, vt))
					continue
				}
				add("storage", fmt.Sprintf("EBS %s %.0f GB (%s)", vt, gb, where), fmt.Sprintf("%.0f GB x $%.3f", gb, pr), gb*pr)
			case r.Type == "AWS::EC2::EIP":
				add("network", "public IPv4 ("+where+")", fmt.Sprintf("%.0f h x $%.3f", month, p.IPv4Hour), month*p.IPv4Hour)
			case r.Type == "AWS::EC2::VPCEndpoint":
				if str(r.Properties["VpcEndpointType"], "Gateway") != "Gateway" {
					unpriced = append(unpriced, where+": interface VPC endpoints are billed per hour and GB; add them to the price table")
				}
			case r.Type == "AWS::Route53::HostedZone":
				add("dns", "Route 53 hosted zone ("+where+")", "", p.HostedZoneMonth)
			case r.Type == "AWS::Route53::HealthCheck":
				c := asMap(r.Properties["HealthCheckConfig"])
				typ := str(c["Type"], "HTTP")
				features := 0.0
				if strings.HasPrefix(typ, "HTTPS") {
					features++
				}
				if strings.HasSuffix(typ, "STR_MATCH") {
					features++
				}
				interval := num(c["RequestInterval"])
				if interval == 0 {
					interval = 30
				}
				if interval < 30 {
					features++
				}
				if b, _ := c["MeasureLatency"].(bool); b {
					features++
				}
				add("dns", fmt.Sprintf("Route 53 %s health check (%s)", typ, where), fmt.Sprintf("$%.2f + %.0f feature(s) x $%.2f", p.HealthCheckMonth, features, p.HealthFeatureMonth), p.HealthCheckMonth+features*p.HealthFeatureMonth)
				regions := float64(len(list(c["Regions"])))
				if regions == 0 {
					regions = 8 // Route 53's default set
				}
				healthRequests += regions * u.CheckersPerRegion * (secondsPerHour / interval) * month
				healthToAPI = healthToAPI || str(c["ResourcePath"], "") == "/health"
			case r.Type == "AWS::CloudFront::Distribution":
				distributions = true
				dc := asMap(r.Properties["DistributionConfig"])
				for _, o := range list(dc["Origins"]) {
					if s := asMap(asMap(o)["OriginShield"]); s["Enabled"] == true {
						shield = true
					}
				}
				for _, b := range append(list(dc["CacheBehaviors"]), dc["DefaultCacheBehavior"]) {
					if len(list(asMap(b)["FunctionAssociations"])) > 0 {
						functions = true
					}
				}
			case r.Type == "AWS::ApiGatewayV2::Api":
				if str(r.Properties["ProtocolType"], "HTTP") != "HTTP" {
					unpriced = append(unpriced, where+": only HTTP APIs are priced")
					continue
				}
				httpAPIs++
			case r.Type == "AWS::ServiceDiscovery::Instance":
				mapInstances++
			case r.Type == "AWS::CloudWatch::Alarm":
				if ms := list(r.Properties["Metrics"]); len(ms) > 0 {
					for _, m := range ms {
						if asMap(m)["MetricStat"] != nil {
							alarmMetrics++
						}
					}
				} else {
					alarmMetrics++
				}
			case r.Type == "AWS::CloudWatch::Dashboard":
				dashboards++
			case r.Type == "AWS::S3::Bucket":
				buckets = append(buckets, str(r.Properties["BucketName"], id))
			case r.Type == "AWS::SSM::Parameter":
				if str(r.Properties["Tier"], "Standard") != "Standard" {
					unpriced = append(unpriced, where+": advanced SSM parameters cost $0.05 a month each; add them to the price table")
				}
			case freeTypes[r.Type] || strings.HasPrefix(r.Type, "Custom::"):
			default:
				unpriced = append(unpriced, fmt.Sprintf("%s: resource type %s is neither priced nor known to be free; add it to internal/infra/cost.go", where, r.Type))
			}
		}
	}
	if len(unpriced) > 0 {
		return nil, fmt.Errorf("%w:\n  - %s", ErrUnpriced, strings.Join(unpriced, "\n  - "))
	}

	// Traffic.
	seconds := month * secondsPerHour
	viewer := u.AverageRPS() * seconds
	apiViewer := viewer * u.APIShare
	staticViewer := viewer - apiViewer
	apiEdgeMiss := apiViewer * (1 - u.APIEdgeHit)
	staticEdgeMiss := staticViewer * (1 - u.StaticEdgeHit)
	apiOrigin := apiEdgeMiss
	if shield {
		apiOrigin *= 1 - u.ShieldHit
	}
	if healthToAPI {
		apiOrigin += healthRequests
	}
	if distributions {
		billable := math.Max(0, viewer-p.CFFreeRequests)
		add("edge", "CloudFront HTTPS requests", fmt.Sprintf("%.2fM requests, %.0fM free", viewer/1e6, p.CFFreeRequests/1e6), billable/1e4*p.CFHTTPSPer10k)
		gb := viewer * u.ResponseBytes / (1 << 30)
		add("edge", "CloudFront data transfer out", fmt.Sprintf("%.1f GB, %.0f GB free", gb, p.CFFreeGBOut), math.Max(0, gb-p.CFFreeGBOut)*p.CFGBOut)
		if functions {
			add("edge", "CloudFront Functions (directory index)", fmt.Sprintf("%.2fM invocations, %.0fM free", staticViewer/1e6, p.CFFreeFunctions/1e6), math.Max(0, staticViewer-p.CFFreeFunctions)/1e6*p.CFFunctionPerMillion)
		}
		if shield {
			misses := apiEdgeMiss + staticEdgeMiss
			add("edge", "Origin Shield requests", fmt.Sprintf("%.2fM edge misses", misses/1e6), misses/1e4*p.ShieldPer10k)
		}
	}
	if httpAPIs > 0 {
		add("api", "API Gateway HTTP API requests", fmt.Sprintf("%.2fM (%.2fM viewer misses + %.2fM health checks)", apiOrigin/1e6, (apiOrigin-healthRequests)/1e6, healthRequests/1e6), apiOrigin/1e6*p.APIGWPerMillion)
	}
	if mapInstances > 0 {
		lookups := apiOrigin * u.CloudMapLookupsPerRequest
		add("api", "Cloud Map (VPC link discovery)", fmt.Sprintf("%d instance(s), %.2fM lookups", mapInstances, lookups/1e6), float64(mapInstances)*p.CloudMapInstanceMonth+lookups/1e6*p.CloudMapDiscoverPerMillion)
	}
	logsGB := u.BoxLogGBMonth
	if httpAPIs > 0 {
		logsGB += apiOrigin * u.AccessLogBytes / (1 << 30)
	}
	add("observability", "CloudWatch Logs ingestion + storage", fmt.Sprintf("%.2f GB, %.0f GB free", logsGB, p.FreeLogsGB), math.Max(0, logsGB-p.FreeLogsGB)*p.LogsIngestGB+logsGB*p.LogsStoreGBMonth)
	add("observability", "CloudWatch alarms", fmt.Sprintf("%.0f alarm metrics, %.0f free", alarmMetrics, p.FreeAlarmMetrics), math.Max(0, alarmMetrics-p.FreeAlarmMetrics)*p.AlarmMetricMonth)
	add("observability", "CloudWatch dashboards", fmt.Sprintf("%.0f, %.0f free", dashboards, p.FreeDashboards), math.Max(0, dashboards-p.FreeDashboards)*p.DashboardMonth)
	add("observability", "CloudWatch custom metrics (agent, backup)", fmt.Sprintf("%.0f metrics, %.0f free", u.CustomMetrics, p.FreeCustomMetrics), math.Max(0, u.CustomMetrics-p.FreeCustomMetrics)*p.CustomMetricMonth)
	for _, b := range buckets {
		gb := u.StaticGB
		puts := 0.0
		switch {
		case strings.Contains(b, "backup"):
			gb, puts = u.BackupsGB, u.BackupPutsMonth
		case strings.Contains(b, "release"):
			gb = u.ReleasesGB
		}
		add("storage", "S3 "+b, fmt.Sprintf("%.2f GB, %.0f PUTs", gb, puts), gb*p.S3GBMonth+puts/1000*p.S3PutPer1k)
	}
	for _, it := range e.Items {
		e.Total += it.USD
	}
	e.Total = math.Round(e.Total*100) / 100
	return e, nil
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		var f float64
		fmt.Sscanf(x, "%g", &f)
		return f
	}
	return 0
}

func str(v any, def string) string {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return def
}
