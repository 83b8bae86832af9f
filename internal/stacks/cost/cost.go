// Package cost answers "does production fit the monthly budget?" from the synthesized
// CloudFormation templates, a dated regional price table in which every value carries its
// unit and source (infra/prices/<region>-<date>.json), and the usage the configuration
// implies: viewer traffic from load.expected_rps and the printed assumptions under cost:,
// plus the work the toolkit itself schedules (backup and WAL runs, site syncs, releases,
// Route 53 health checks, AMI snapshots, versioned backups).
//
// Every resource type in the templates is either priced or listed as free here; an unknown
// one fails the estimate rather than counting as free. Besides on-demand, the estimate prices
// the cheapest variants that keep the architecture, each with what it trades, and the budget
// gate checks the one the configuration selects (budget.variant). It reads template JSON only,
// so both the CDK app (infra/, its own module) and the mage targets use it without linking CDK.
package cost

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

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

// ErrUnpriced is returned (wrapped) for a resource the model cannot price.
var ErrUnpriced = errors.New("unpriced resource")

// freeTypes cost nothing by themselves; what they carry is priced through usage (an HTTP
// API's routes through its requests, a log group through the logs it receives, the SNS topic
// through its first 1,000 free e-mails a month: alarm mail stays far below).
var freeTypes = map[string]bool{
	"AWS::CDK::Metadata": true, "AWS::EC2::VPC": true, "AWS::EC2::Subnet": true, "AWS::EC2::RouteTable": true,
	"AWS::EC2::Route": true, "AWS::EC2::SubnetRouteTableAssociation": true, "AWS::EC2::InternetGateway": true,
	"AWS::EC2::VPCGatewayAttachment": true, "AWS::EC2::SecurityGroup": true, "AWS::EC2::SecurityGroupIngress": true,
	"AWS::EC2::SecurityGroupEgress": true, "AWS::EC2::VolumeAttachment": true, "AWS::EC2::EIPAssociation": true,
	"AWS::EC2::LaunchTemplate": true, // priced through the instances that use it
	"AWS::IAM::Role":           true, "AWS::IAM::Policy": true, "AWS::IAM::InstanceProfile": true, "AWS::IAM::OIDCProvider": true,
	"AWS::IAM::ManagedPolicy": true,
	// CDK's custom-resource providers run a few times per deploy: far inside Lambda's free tier.
	"AWS::Lambda::Function": true, "AWS::Lambda::Permission": true,
	"AWS::CertificateManager::Certificate": true, "AWS::Route53::RecordSet": true,
	"AWS::CloudFront::CachePolicy": true, "AWS::CloudFront::OriginAccessControl": true, "AWS::CloudFront::Function": true,
	"AWS::CloudFront::OriginRequestPolicy": true, "AWS::CloudFront::ResponseHeadersPolicy": true, "AWS::S3::BucketPolicy": true,
	"AWS::ApiGatewayV2::Route": true, "AWS::ApiGatewayV2::Integration": true, "AWS::ApiGatewayV2::Authorizer": true,
	"AWS::ApiGatewayV2::Stage": true, "AWS::ApiGatewayV2::VpcLink": true, "AWS::ApiGatewayV2::DomainName": true,
	"AWS::ApiGatewayV2::ApiMapping": true, "AWS::Logs::LogGroup": true,
	"AWS::SNS::Subscription": true, "AWS::SNS::Topic": true, "AWS::SNS::TopicPolicy": true,
	"AWS::ServiceDiscovery::HttpNamespace": true, "AWS::ServiceDiscovery::Service": true,
	"AWS::Budgets::Budget": true, // the first two budgets of an account are free
}

// Line is one priced item.
type Line struct {
	Group, Name, Detail string
	USD                 float64
}

// Variant is a way of running the same architecture at a different price.
type Variant struct {
	Name string
	// Trade says what the variant gives up; empty for on-demand.
	Trade string
	// HTTPHealthCheck prices Route 53 HTTPS checks as HTTP ones (one optional feature less).
	HTTPHealthCheck bool
	// ShieldS3Only keeps Origin Shield only in front of S3 origins.
	ShieldS3Only bool
	// SavingsPlan prices instances at the 1-year Compute Savings Plan rate.
	SavingsPlan bool
}

// OnDemand is the variant of the templates as synthesized at on-demand prices.
const OnDemand = "on-demand"

// Variants are the priced variants, on-demand first. Each keeps the spec's architecture (one
// box, CloudFront, API Gateway with the JWT authorizer, Route 53 health check, restic backups).
func Variants() []Variant {
	return []Variant{
		{Name: OnDemand},
		{Name: "http-health-check", HTTPHealthCheck: true,
			Trade: "Route 53 probes /health over HTTP, one optional feature less; the probe is unencrypted, and /health must answer plain HTTP at the edge instead of redirecting (Route 53 counts a 3xx as healthy, so a redirect would report healthy without reaching the box)"},
		{Name: "shield-s3-only", ShieldS3Only: true,
			Trade: "Origin Shield only in front of S3: API edge misses and health checks stop paying the shield fee, but each regional edge cache's miss of a cacheable API response reaches API Gateway and the box"},
		{Name: "savings-plan-1yr", SavingsPlan: true,
			Trade: "the instance at a 1-year no-upfront Compute Savings Plan rate: an hourly commitment paid for 12 months whether the box runs or not (it follows the box to another size, family or region)"},
		{Name: "cheapest", HTTPHealthCheck: true, ShieldS3Only: true, SavingsPlan: true,
			Trade: "all three trades above"},
	}
}

// VariantNames lists the variant names.
func VariantNames() []string {
	var out []string
	for _, v := range Variants() {
		out = append(out, v.Name)
	}
	return out
}

// Result is one variant priced.
type Result struct {
	Variant Variant
	Lines   []Line
	Total   float64
	// Undeployed lists where the templates differ from what the variant prices (an HTTPS
	// check priced as HTTP, a shielded API origin priced unshielded): the gate refuses to
	// check such a variant, since production would not run it.
	Undeployed []string
	// InstanceHours are the priced instance-hours by instance type.
	InstanceHours map[string]float64
}

// Traffic is the monthly traffic a result was priced at, for the output.
type Traffic struct {
	Viewer, HealthChecks, APIGateway, ShieldRequests, StaticOrigin float64
	HealthCheckNotes                                               []string
}

const secondsPerHour = 3600

// model prices the templates for one variant.
type model struct {
	ts []Template
	l  *lookup
	u  Usage
	v  Variant
	// Bucket names by kind, from the configuration.
	backups, releases, static string

	lines      []Line
	unpriced   []string
	undeployed []string
	hours      map[string]float64
	traffic    Traffic
}

func (m *model) add(group, name, detail string, usd float64) {
	m.lines = append(m.lines, Line{Group: group, Name: name, Detail: detail, USD: usd})
}

// healthCheck is a Route 53 health check as it bills and as it loads the path.
type healthCheck struct {
	where, typ           string
	interval, regions    float64
	throughEdge, toAPI   bool
	latency, fastFeature bool
}

type bucket struct {
	where, name   string
	versioned     bool
	noncurrentDay float64 // 0 with versioning: never expire
}

type origin struct {
	s3, shield bool
}

type instanceSpec struct {
	typ    string
	blocks []any
}

// BucketNames are the configured bucket names by kind; a template bucket outside them has no
// usage assumption and fails the estimate.
type BucketNames struct{ Backups, Releases, Static string }

// run prices every resource and then the usage.
func (m *model) run() (*Result, error) {
	hours := m.l.get(KeyHoursPerMonth, "hourly prices")
	var (
		checks                   []healthCheck
		buckets                  []bucket
		origins                  []origin
		distributions            int
		functionBehaviors        bool
		httpAPIs, mapInstances   int
		alarmMetrics, dashboards float64
	)
	launchTemplates := map[string]instanceSpec{}
	for _, t := range m.ts {
		for id, r := range t.Resources {
			if r.Type == "AWS::EC2::LaunchTemplate" {
				d := asMap(r.Properties["LaunchTemplateData"])
				launchTemplates[id] = instanceSpec{typ: str(d["InstanceType"], ""), blocks: list(d["BlockDeviceMappings"])}
			}
		}
	}
	for _, t := range m.ts {
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
				if b, _ := r.Properties["Monitoring"].(bool); b {
					m.unpriced = append(m.unpriced, where+": detailed monitoring bills the instance's metrics as custom metrics; add them to the model or turn it off")
				}
				m.instance(where, instanceSpec{typ: str(r.Properties["InstanceType"], ""), blocks: list(r.Properties["BlockDeviceMappings"])}, 1, hours)
			case r.Type == "AWS::AutoScaling::AutoScalingGroup":
				lt := asMap(r.Properties["LaunchTemplate"])
				ref := str(asMap(lt["LaunchTemplateId"])["Ref"], "")
				spec, ok := launchTemplates[ref]
				if !ok {
					m.unpriced = append(m.unpriced, where+": Auto Scaling group without a launch template in these templates")
					continue
				}
				n := num(r.Properties["DesiredCapacity"])
				if n == 0 {
					n = num(r.Properties["MaxSize"])
				}
				m.instance(where, spec, n, hours)
			case r.Type == "AWS::EC2::Volume":
				m.baselinePerformance(where, r.Properties)
				gb, vt := num(r.Properties["Size"]), str(r.Properties["VolumeType"], "gp2")
				pr := m.l.get(VolumeKey(vt), where)
				m.add("storage", fmt.Sprintf("EBS %s %.0f GB (%s)", vt, gb, where), fmt.Sprintf("%.0f GB x $%.3f", gb, pr), gb*pr)
			case r.Type == "AWS::EC2::EIP":
				pr := m.l.get(KeyIPv4Hour, where)
				m.add("network", "public IPv4 ("+where+")", fmt.Sprintf("%.0f h x $%.3f", hours, pr), hours*pr)
			case r.Type == "AWS::EC2::VPCEndpoint":
				if str(r.Properties["VpcEndpointType"], "Gateway") != "Gateway" {
					m.unpriced = append(m.unpriced, where+": interface VPC endpoints are billed per hour and GB; add them to the price table and the model")
				}
			case r.Type == "AWS::Route53::HostedZone":
				m.add("dns", "Route 53 hosted zone ("+where+")", "", m.l.get(KeyHostedZone, where))
			case r.Type == "AWS::Route53::HealthCheck":
				c := asMap(r.Properties["HealthCheckConfig"])
				hc := healthCheck{where: where, typ: str(c["Type"], "HTTP"), interval: num(c["RequestInterval"]), regions: float64(len(list(c["Regions"])))}
				if hc.interval == 0 {
					hc.interval = 30
				}
				if hc.regions == 0 {
					hc.regions = 8 // Route 53's default checker regions
				}
				if b, _ := c["MeasureLatency"].(bool); b {
					hc.latency = true
				}
				// An endpoint check by domain name goes through the public path (CloudFront, then
				// API Gateway for /health, which no behavior caches).
				hc.throughEdge = c["FullyQualifiedDomainName"] != nil && c["IPAddress"] == nil
				hc.toAPI = strings.HasPrefix(str(c["ResourcePath"], "/"), "/health")
				switch hc.typ {
				case "HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP":
					checks = append(checks, hc)
				default:
					m.unpriced = append(m.unpriced, fmt.Sprintf("%s: health check type %s is not modelled", where, hc.typ))
				}
			case r.Type == "AWS::CloudFront::Distribution":
				distributions++
				dc := asMap(r.Properties["DistributionConfig"])
				for _, o := range list(dc["Origins"]) {
					om := asMap(o)
					origins = append(origins, origin{s3: om["S3OriginConfig"] != nil, shield: asMap(om["OriginShield"])["Enabled"] == true})
				}
				for _, b := range append(list(dc["CacheBehaviors"]), dc["DefaultCacheBehavior"]) {
					if len(list(asMap(b)["FunctionAssociations"])) > 0 {
						functionBehaviors = true
					}
				}
				if asMap(dc["Logging"])["Bucket"] != nil {
					m.unpriced = append(m.unpriced, where+": standard logging writes to S3; add its storage to the model")
				}
			case r.Type == "AWS::ApiGatewayV2::Api":
				if str(r.Properties["ProtocolType"], "HTTP") != "HTTP" {
					m.unpriced = append(m.unpriced, where+": only HTTP APIs are priced")
					continue
				}
				httpAPIs++
			case r.Type == "AWS::ServiceDiscovery::Instance":
				mapInstances++
			case r.Type == "AWS::ServiceDiscovery::Service" && !t.hasType("AWS::ServiceDiscovery::Instance"):
				// The box registers itself in its service at first boot (one instance id,
				// replaced in place): priced as one registered instance.
				mapInstances++
			case r.Type == "AWS::CloudWatch::Alarm":
				if ms := list(r.Properties["Metrics"]); len(ms) > 0 {
					for _, mm := range ms {
						if asMap(mm)["MetricStat"] != nil {
							alarmMetrics++
						}
					}
				} else {
					alarmMetrics++
				}
			case r.Type == "AWS::CloudWatch::Dashboard":
				dashboards++
			case r.Type == "AWS::S3::Bucket":
				b := bucket{where: where, name: str(r.Properties["BucketName"], id)}
				b.versioned = str(asMap(r.Properties["VersioningConfiguration"])["Status"], "") == "Enabled"
				for _, rule := range list(asMap(r.Properties["LifecycleConfiguration"])["Rules"]) {
					rm := asMap(rule)
					if str(rm["Status"], "Enabled") != "Enabled" {
						continue
					}
					d := num(asMap(rm["NoncurrentVersionExpiration"])["NoncurrentDays"])
					if d == 0 {
						d = num(rm["NoncurrentVersionExpirationInDays"])
					}
					if d > 0 && (b.noncurrentDay == 0 || d > b.noncurrentDay) {
						b.noncurrentDay = d
					}
				}
				buckets = append(buckets, b)
			case r.Type == "AWS::SSM::Parameter":
				if str(r.Properties["Tier"], "Standard") != "Standard" {
					m.unpriced = append(m.unpriced, where+": advanced SSM parameters are billed a month each; add them to the price table")
				}
			case freeTypes[r.Type] || strings.HasPrefix(r.Type, "Custom::"):
			default:
				m.unpriced = append(m.unpriced, fmt.Sprintf("%s: resource type %s is neither priced nor known to be free; price it or list it as free in internal/stacks/cost/cost.go", where, r.Type))
			}
		}
	}
	if len(m.unpriced) > 0 {
		sort.Strings(m.unpriced)
		return nil, fmt.Errorf("%w:\n  - %s", ErrUnpriced, strings.Join(m.unpriced, "\n  - "))
	}

	u := m.u
	seconds := hours * secondsPerHour

	// Route 53 health checks: the check itself, then its requests through the path.
	var health, healthAPI float64
	for _, hc := range checks {
		typ := hc.typ
		if m.v.HTTPHealthCheck && strings.HasPrefix(typ, "HTTPS") {
			typ = strings.Replace(typ, "HTTPS", "HTTP", 1)
			m.undeployed = append(m.undeployed, hc.where+" is an "+hc.typ+" check (infra/dns.go)")
		}
		features := 0.0
		if strings.HasPrefix(typ, "HTTPS") {
			features++
		}
		if strings.HasSuffix(typ, "STR_MATCH") {
			features++
		}
		if hc.interval < 30 {
			features++
		}
		if hc.latency {
			features++
		}
		base, feat := m.l.get(KeyHealthCheck, hc.where), m.l.get(KeyHealthCheckFeature, hc.where)
		m.add("dns", fmt.Sprintf("Route 53 %s health check (%s)", typ, hc.where), fmt.Sprintf("$%.2f + %.0f feature(s) x $%.2f", base, features, feat), base+features*feat)
		n := hc.regions * u.HealthCheckersPerRegion * (secondsPerHour / hc.interval) * hours
		m.traffic.HealthCheckNotes = append(m.traffic.HealthCheckNotes, fmt.Sprintf("%.0f regions x %g checkers x every %.0f s = %.2fM requests", hc.regions, u.HealthCheckersPerRegion, hc.interval, n/1e6))
		if hc.throughEdge {
			health += n
			if hc.toAPI {
				healthAPI += n
			}
		}
	}
	m.traffic.HealthChecks = health

	// Viewer traffic through CloudFront.
	viewer := u.AverageRPS() * seconds
	apiViewer := viewer * u.APIShare
	staticViewer := viewer - apiViewer
	apiEdgeMiss := apiViewer * (1 - u.APIEdgeHit)
	staticEdgeMiss := staticViewer * (1 - u.StaticEdgeHit)
	var shieldAPI, shieldStatic bool
	for _, o := range origins {
		if !o.shield {
			continue
		}
		switch {
		case o.s3:
			shieldStatic = true
		case m.v.ShieldS3Only:
			m.undeployed = append(m.undeployed, "the distribution's API origin has Origin Shield on (edge.origin_shield_region applies it to every origin, infra/edge.go)")
		default:
			shieldAPI = true
		}
	}
	apiOrigin, staticOrigin := apiEdgeMiss, staticEdgeMiss
	if shieldAPI {
		apiOrigin *= 1 - u.ShieldHit
	}
	if shieldStatic {
		staticOrigin *= 1 - u.ShieldHit
	}
	m.traffic.Viewer, m.traffic.StaticOrigin = viewer, staticOrigin
	if distributions > 0 {
		free := m.l.get(KeyCFFreeRequests, "CloudFront requests")
		requests := viewer + health
		per10k := m.l.get(KeyCFHTTPSPer10k, "CloudFront requests")
		m.add("edge", "CloudFront HTTPS requests", fmt.Sprintf("%.2fM viewer + %.2fM health checks, %.0fM free", viewer/1e6, health/1e6, free/1e6), math.Max(0, requests-free)/1e4*per10k)
		gb := (viewer*u.ResponseBytes + health*1024) / (1 << 30)
		freeGB := m.l.get(KeyCFFreeGBOut, "CloudFront data out")
		m.add("edge", "CloudFront data transfer out", fmt.Sprintf("%.1f GB, %.0f GB free", gb, freeGB), math.Max(0, gb-freeGB)*m.l.get(KeyCFDataOutGB, "CloudFront data out"))
		if functionBehaviors {
			freeF := m.l.get(KeyCFFreeFunctions, "CloudFront Functions")
			m.add("edge", "CloudFront Functions (directory index)", fmt.Sprintf("%.2fM invocations, %.0fM free", staticViewer/1e6, freeF/1e6), math.Max(0, staticViewer-freeF)/1e6*m.l.get(KeyCFFunctionPerM, "CloudFront Functions"))
		}
		var shielded float64
		var what []string
		if shieldAPI {
			shielded += apiEdgeMiss + healthAPI
			what = append(what, fmt.Sprintf("API misses %.2fM + health checks %.2fM", apiEdgeMiss/1e6, healthAPI/1e6))
		}
		if shieldStatic {
			shielded += staticEdgeMiss
			what = append(what, fmt.Sprintf("S3 misses %.2fM", staticEdgeMiss/1e6))
		}
		if shieldAPI || shieldStatic {
			m.traffic.ShieldRequests = shielded
			// Conservative: every request reaching the shield is counted, non-cacheable ones too.
			m.add("edge", "Origin Shield requests", strings.Join(what, ", "), shielded/1e4*m.l.get(KeyShieldPer10k, "Origin Shield"))
		}
		paths := u.SiteSyncsMonth * u.SiteInvalidationPaths
		freeP := m.l.get(KeyCFFreeInvalidations, "invalidations")
		m.add("edge", "CloudFront invalidations (site syncs)", fmt.Sprintf("%.0f paths, %.0f free", paths, freeP), math.Max(0, paths-freeP)*m.l.get(KeyCFInvalidationPath, "invalidations"))
	}
	gateway := apiOrigin + healthAPI
	m.traffic.APIGateway = gateway
	if httpAPIs > 0 {
		m.add("api", "API Gateway HTTP API requests", fmt.Sprintf("%.2fM (%.2fM viewer misses + %.2fM health checks)", gateway/1e6, apiOrigin/1e6, healthAPI/1e6), gateway/1e6*m.l.get(KeyAPIGWPerMillion, "API Gateway"))
	}
	if mapInstances > 0 {
		lookups := gateway * u.CloudMapLookupsPerRequest
		m.add("api", "Cloud Map (VPC link discovery)", fmt.Sprintf("%d instance(s), %.2fM lookups", mapInstances, lookups/1e6),
			float64(mapInstances)*m.l.get(KeyCloudMapInstance, "Cloud Map")+lookups/1e6*m.l.get(KeyCloudMapDiscoverM, "Cloud Map"))
	}

	// CloudWatch: the project's own share of the account's free tiers.
	logsGB := u.BoxLogGBMonth
	if httpAPIs > 0 {
		logsGB += gateway * u.AccessLogBytes / (1 << 30)
	}
	freeLogs := m.l.get(KeyFreeLogsGB, "CloudWatch Logs")
	m.add("observability", "CloudWatch Logs ingestion + storage", fmt.Sprintf("%.2f GB, %.0f GB free", logsGB, freeLogs),
		math.Max(0, logsGB-freeLogs)*m.l.get(KeyLogsIngestGB, "CloudWatch Logs")+logsGB*m.l.get(KeyLogsStoreGB, "CloudWatch Logs"))
	m.add("observability", "CloudWatch alarms", fmt.Sprintf("%.0f alarm metrics, %.0f used elsewhere, %.0f free", alarmMetrics, u.OtherAlarmMetrics, m.l.get(KeyFreeAlarmMetrics, "alarms")),
		marginal(alarmMetrics, u.OtherAlarmMetrics, m.l.get(KeyFreeAlarmMetrics, "alarms"))*m.l.get(KeyAlarmMetric, "alarms"))
	m.add("observability", "CloudWatch dashboards", fmt.Sprintf("%.0f, %.0f free", dashboards, m.l.get(KeyFreeDashboards, "dashboards")),
		math.Max(0, dashboards-m.l.get(KeyFreeDashboards, "dashboards"))*m.l.get(KeyDashboard, "dashboards"))
	m.add("observability", "CloudWatch custom metrics (agent, backup)", fmt.Sprintf("%.0f metrics, %.0f used elsewhere, %.0f free", u.CustomMetrics, u.OtherCustomMetrics, m.l.get(KeyFreeCustomMetrics, "custom metrics")),
		marginal(u.CustomMetrics, u.OtherCustomMetrics, m.l.get(KeyFreeCustomMetrics, "custom metrics"))*m.l.get(KeyCustomMetric, "custom metrics"))

	// S3: storage, noncurrent versions and the requests of the toolkit's own jobs.
	gbMonth, put, get := m.l.get(KeyS3GBMonth, "S3"), m.l.get(KeyS3PutPer1k, "S3"), m.l.get(KeyS3GetPer1k, "S3")
	for _, b := range buckets {
		var gb, churnDay, puts, gets float64
		var detail, churnHow string
		switch b.name {
		case m.backups:
			gb = u.BackupsGB
			churnDay, churnHow = u.BackupChurn()
			puts = u.WALRuns*(u.WALRun.Put+u.WALRun.List) + u.DailyRuns*(u.DailyRun.Put+u.DailyRun.List) + u.BaseRuns*(u.BaseRun.Put+u.BaseRun.List) + u.VerifyRuns*(u.VerifyRun.Put+u.VerifyRun.List)
			gets = u.WALRuns*u.WALRun.Get + u.DailyRuns*u.DailyRun.Get + u.BaseRuns*u.BaseRun.Get + u.VerifyRuns*u.VerifyRun.Get
			detail = fmt.Sprintf("restic: %.0f WAL + %.1f daily + %.1f base + %.1f verify runs", u.WALRuns, u.DailyRuns, u.BaseRuns, u.VerifyRuns)
		case m.releases:
			gb = u.ReleasesGB
			if u.ReleaseKeep > 0 {
				churnDay = u.ReleasesMonth / 30 * u.ReleasesGB / u.ReleaseKeep
			}
			churnHow = fmt.Sprintf("%g releases a month of %g GB / keep %g", u.ReleasesMonth, u.ReleasesGB, u.ReleaseKeep)
			puts = u.ReleasesMonth * (u.ReleaseObjects + 2) // objects, then LIST by retention and history
			gets = u.ReleasesMonth * u.ReleaseObjects       // the box fetches what it deploys
			detail = fmt.Sprintf("%.0f releases", u.ReleasesMonth)
		case m.static:
			gb = u.StaticGB
			puts = u.SiteSyncsMonth * (math.Ceil(u.SiteObjects/1000) + u.SiteChangedObjects)
			gets = staticOrigin // CloudFront's origin fetches are S3 GETs
			detail = fmt.Sprintf("%.0f syncs, %.2fM origin GETs", u.SiteSyncsMonth, staticOrigin/1e6)
		default:
			return nil, fmt.Errorf("%w: %s: bucket %q is none of the configured buckets (backups %q, releases %q, static %q), so nothing says what it stores; add its usage to the model", ErrUnpriced, b.where, b.name, m.backups, m.releases, m.static)
		}
		m.add("storage", "S3 "+b.name, fmt.Sprintf("%.2f GB, %.0f PUT/LIST, %.0f GET; %s", gb, puts, gets, detail), gb*gbMonth+puts/1000*put+gets/1000*get)
		if b.versioned {
			days, note := b.noncurrentDay, fmt.Sprintf("kept %.0f days", b.noncurrentDay)
			if days == 0 {
				days, note = 365, "never expire: priced at a year of churn, and growing"
			}
			ngb := churnDay * days
			m.add("storage", "S3 "+b.name+" noncurrent versions", fmt.Sprintf("%.3f GB/day deleted (%s), %s: %.1f GB", churnDay, churnHow, note, ngb), ngb*gbMonth)
		}
	}

	// AMI snapshots: the image pipeline keeps the newest images and their root snapshots.
	snaps := u.AMIImagesKept * u.AMISnapshotGB
	m.add("storage", "EBS snapshots of kept AMIs", fmt.Sprintf("%.0f images x %.0f GB", u.AMIImagesKept, u.AMISnapshotGB), snaps*m.l.get(KeyEBSSnapshot, "AMI snapshots"))

	if err := m.l.err(); err != nil {
		return nil, err
	}
	res := &Result{Variant: m.v, Lines: m.lines, Undeployed: m.undeployed, InstanceHours: m.hours}
	for _, ln := range m.lines {
		res.Total += ln.USD
	}
	res.Total = math.Round(res.Total*100) / 100
	return res, nil
}

// instance prices n instances of spec and their root volumes.
func (m *model) instance(where string, spec instanceSpec, n, hours float64) {
	key, kind := InstanceKey(spec.typ), "on-demand"
	if m.v.SavingsPlan {
		key, kind = SavingsPlanKey(spec.typ), "1-yr Compute Savings Plan"
	}
	if spec.typ == "" {
		m.unpriced = append(m.unpriced, where+": no instance type")
		return
	}
	h := m.l.get(key, where)
	if m.hours == nil {
		m.hours = map[string]float64{}
	}
	m.hours[spec.typ] += n * hours
	m.add("compute", fmt.Sprintf("EC2 %s %s (%s)", spec.typ, kind, where), fmt.Sprintf("%g x %.0f h x $%.4f", n, hours, h), n*hours*h)
	for _, bd := range spec.blocks {
		ebs := asMap(asMap(bd)["Ebs"])
		if ebs == nil {
			continue
		}
		m.baselinePerformance(where, ebs)
		gb, vt := num(ebs["VolumeSize"]), str(ebs["VolumeType"], "gp2")
		pr := m.l.get(VolumeKey(vt), where)
		m.add("storage", fmt.Sprintf("EBS root %s %.0f GB (%s)", vt, gb, where), fmt.Sprintf("%g x %.0f GB x $%.3f", n, gb, pr), n*gb*pr)
	}
}

// baselinePerformance refuses gp3 IOPS or throughput provisioned above the free baseline
// (3,000 IOPS, 125 MB/s): they are billed per IOPS-month and MB/s-month, not modelled.
func (m *model) baselinePerformance(where string, props map[string]any) {
	if str(props["VolumeType"], "gp2") == "gp3" && (num(props["Iops"]) > 3000 || num(props["Throughput"]) > 125) {
		m.unpriced = append(m.unpriced, where+": gp3 IOPS or throughput above the 3,000 IOPS / 125 MB/s baseline are billed; add them to the price table and the model")
	}
}

// marginal is how many of ours are billed when others already use part of the free tier.
func marginal(ours, others, free float64) float64 {
	return math.Max(0, ours+others-free) - math.Max(0, others-free)
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

// hasType reports whether the template has a resource of type typ.
func (t Template) hasType(typ string) bool {
	for _, r := range t.Resources {
		if r.Type == typ {
			return true
		}
	}
	return false
}
