package config

import (
	"fmt"
	"reflect"
	"strings"
)

// CostUsage holds the usage assumptions `infra:cost` prices the request- and storage-billed
// services at. Everything the toolkit itself schedules (backup runs, WAL shipping, health
// checks) is derived from the rest of the configuration and the synthesized templates; only
// what nothing in the repository determines is assumed here, and every value is printed with
// the estimate so a reader can disagree with it.
type CostUsage struct {
	// AverageShare is the month's average viewer rate as a share of load.expected_rps (the
	// busy-period rate load tests multiply): 0.02 is about one request a second at 50.
	AverageShare float64 `yaml:"average_share"`
	// APIShare of viewer requests is /api/* (the rest is the static site).
	APIShare float64 `yaml:"api_share"`
	// APIEdgeHit and StaticEdgeHit are the edge cache hit ratios; ShieldHit is Origin
	// Shield's hit ratio on edge misses of cacheable responses.
	APIEdgeHit    float64 `yaml:"api_edge_hit"`
	StaticEdgeHit float64 `yaml:"static_edge_hit"`
	ShieldHit     float64 `yaml:"shield_hit"`
	// ResponseBytes is the average response size sent to viewers.
	ResponseBytes float64 `yaml:"response_bytes"`
	// AccessLogBytes is one API Gateway access-log line; BoxLogGBMonth is what the CloudWatch
	// agent ships from the box a month.
	AccessLogBytes float64 `yaml:"access_log_bytes"`
	BoxLogGBMonth  float64 `yaml:"box_log_gb_month"`
	// HealthCheckersPerRegion is how many Route 53 checkers probe from each checker region.
	// Route 53 runs about 15-16 checkers over its 8 default regions (about two per region),
	// each sending one request per RequestInterval, uncoordinated.
	HealthCheckersPerRegion float64 `yaml:"health_checkers_per_region"`
	// CloudMapLookupsPerRequest is DiscoverInstances calls per request through the VPC link.
	CloudMapLookupsPerRequest float64 `yaml:"cloud_map_lookups_per_request"`
	// Stored data: the restic repository, the releases kept, the static export.
	BackupsGB  float64 `yaml:"backups_gb"`
	ReleasesGB float64 `yaml:"releases_gb"`
	StaticGB   float64 `yaml:"static_gb"`
	// BackupChurnGBDay is what restic's retention deletes a day; on a versioned bucket it stays
	// as noncurrent versions. 0 derives it from the retention: the repository holds
	// backup.keep_daily days (plus the day being written), so a day's share ages out daily.
	BackupChurnGBDay float64 `yaml:"backup_churn_gb_day"`
	// S3 requests of one restic run, by kind of run: the requests restic makes to open the
	// repository (config, keys), lock it, read the index and the snapshot list, and write
	// packs, index and snapshot. LIST is billed at the PUT rate.
	WALRun    ResticRequests `yaml:"wal_run"`
	DailyRun  ResticRequests `yaml:"daily_run"`  // dumps plus forget --prune
	BaseRun   ResticRequests `yaml:"base_run"`   // weekly base backup plus WAL retention
	VerifyRun ResticRequests `yaml:"verify_run"` // check --read-data-subset n/7
	// ReleasesMonth and SiteSyncsMonth are deploys a month; a release uploads a few objects
	// and the box reads them; a site sync lists the bucket and uploads what changed.
	ReleasesMonth         float64 `yaml:"releases_month"`
	ReleaseObjects        float64 `yaml:"release_objects"`
	SiteSyncsMonth        float64 `yaml:"site_syncs_month"`
	SiteObjects           float64 `yaml:"site_objects"`
	SiteChangedObjects    float64 `yaml:"site_changed_objects"`
	SiteInvalidationPaths float64 `yaml:"site_invalidation_paths"`
	// AMIImagesKept is how many images the AMI pipeline keeps (it prunes older ones with their
	// snapshots); AMISnapshotGB is the written size of one image's root snapshot.
	AMIImagesKept float64 `yaml:"ami_images_kept"`
	AMISnapshotGB float64 `yaml:"ami_snapshot_gb"`
	// CustomMetrics the box publishes (CloudWatch agent memory and disk, backup results);
	// OtherCustomMetrics and OtherAlarmMetrics are what other workloads in the same account
	// already use of the free ten.
	CustomMetrics      float64 `yaml:"custom_metrics"`
	OtherCustomMetrics float64 `yaml:"other_custom_metrics"`
	OtherAlarmMetrics  float64 `yaml:"other_alarm_metrics"`
}

// ResticRequests are the S3 requests of one restic run.
type ResticRequests struct {
	Put  float64 `yaml:"put"`
	List float64 `yaml:"list"`
	Get  float64 `yaml:"get"`
}

// DefaultCostUsage is the baseline the estimate uses unless the file overrides it.
func DefaultCostUsage() CostUsage {
	return CostUsage{
		AverageShare:              0.02,
		APIShare:                  0.6,
		APIEdgeHit:                0.7,
		StaticEdgeHit:             0.95,
		ShieldHit:                 0.5,
		ResponseBytes:             8 << 10,
		AccessLogBytes:            350,
		BoxLogGBMonth:             0.6,
		HealthCheckersPerRegion:   2,
		CloudMapLookupsPerRequest: 1,
		BackupsGB:                 3,
		ReleasesGB:                0.3,
		StaticGB:                  0.05,
		// A WAL shipment as measured by internal/stacks/cost's TestResticRequestsPerWALShipment
		// (restic 0.17.3, versitygw, cache kept): EnsureInit's `cat config` and the backup each
		// open the repository (HEAD+GET config, LIST+GET keys), lock it (PUT lock, LIST locks),
		// list index and snapshots; the backup writes packs, index and snapshot. The other runs
		// are estimates from the same layout (about 30 a month each: cents either way).
		WALRun:                ResticRequests{Put: 6, List: 14, Get: 6},
		DailyRun:              ResticRequests{Put: 30, List: 14, Get: 80},
		BaseRun:               ResticRequests{Put: 40, List: 14, Get: 60},
		VerifyRun:             ResticRequests{Put: 2, List: 8, Get: 60},
		ReleasesMonth:         20,
		ReleaseObjects:        4,
		SiteSyncsMonth:        20,
		SiteObjects:           400,
		SiteChangedObjects:    60,
		SiteInvalidationPaths: 1,
		AMIImagesKept:         3,
		AMISnapshotGB:         4,
		CustomMetrics:         8,
	}
}

// CostAssumption is one printed assumption.
type CostAssumption struct {
	Key   string // the YAML key under cost:
	Value string
}

// Assumptions lists every assumption with its YAML key, in declaration order.
func (c CostUsage) Assumptions() []CostAssumption {
	var out []CostAssumption
	v := reflect.ValueOf(c)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		key := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		switch f := v.Field(i).Interface().(type) {
		case ResticRequests:
			out = append(out, CostAssumption{key, fmt.Sprintf("put=%g list=%g get=%g", f.Put, f.List, f.Get)})
		default:
			out = append(out, CostAssumption{key, fmt.Sprintf("%g", f)})
		}
	}
	return out
}

// validate lists every negative assumption and every share outside [0,1].
func (c CostUsage) validate(env string) []string {
	var p []string
	v := reflect.ValueOf(c)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		key := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		var nums []float64
		switch f := v.Field(i).Interface().(type) {
		case ResticRequests:
			nums = []float64{f.Put, f.List, f.Get}
		case float64:
			nums = []float64{f}
		}
		for _, n := range nums {
			if n < 0 {
				p = append(p, fmt.Sprintf("environments.%s.cost.%s: %g is negative; usage assumptions are counts, sizes or shares", env, key, n))
				break
			}
		}
	}
	for _, s := range []struct {
		key string
		v   float64
	}{{"api_share", c.APIShare}, {"api_edge_hit", c.APIEdgeHit}, {"static_edge_hit", c.StaticEdgeHit}, {"shield_hit", c.ShieldHit}} {
		if s.v > 1 {
			p = append(p, fmt.Sprintf("environments.%s.cost.%s: %g is a share; write it between 0 and 1", env, s.key, s.v))
		}
	}
	return p
}
