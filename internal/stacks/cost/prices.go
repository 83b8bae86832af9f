package cost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Price is one value of the price table with what it is per and where it comes from.
type Price struct {
	Value float64 `json:"value"`
	// Unit says what Value is per ("USD per instance-hour", "requests a month free").
	Unit string `json:"unit"`
	// Source names the offer file or page and how it was read; a value nobody could check
	// against a public source starts with "not verified:" and says why.
	Source string `json:"source"`
	// Read is the date (yyyy-mm-dd) the source was read.
	Read string `json:"read"`
}

// Verified reports whether the source is a checked one.
func (p Price) Verified() bool { return !strings.HasPrefix(strings.TrimSpace(p.Source), NotVerified) }

// NotVerified starts the source of a value that could not be checked against a public source.
const NotVerified = "not verified:"

// Prices is a dated regional price table (infra/prices/<region>-<date>.json).
type Prices struct {
	Region   string           `json:"region"`
	Currency string           `json:"currency"`
	Recorded string           `json:"recorded"`
	Note     string           `json:"note,omitempty"`
	Values   map[string]Price `json:"prices"`

	// File is where the table was read from (for the output).
	File string `json:"-"`
}

// Price keys. Instance and volume prices are keyed by type: ec2.<type>.hour,
// ec2.<type>.savings_plan_1yr.hour, ebs.<type>.gb_month.
const (
	KeyHoursPerMonth       = "hours_per_month"
	KeyEBSSnapshot         = "ebs.snapshot.gb_month"
	KeyIPv4Hour            = "vpc.public_ipv4.hour"
	KeyHostedZone          = "route53.hosted_zone.month"
	KeyHealthCheck         = "route53.health_check.month"
	KeyHealthCheckFeature  = "route53.health_check_feature.month"
	KeyAPIGWPerMillion     = "apigw.http.per_million"
	KeyCFHTTPSPer10k       = "cloudfront.https.per_10k"
	KeyShieldPer10k        = "cloudfront.origin_shield.per_10k"
	KeyCFDataOutGB         = "cloudfront.data_out.gb"
	KeyCFFunctionPerM      = "cloudfront.function.per_million"
	KeyCFInvalidationPath  = "cloudfront.invalidation.per_path"
	KeyCFFreeInvalidations = "cloudfront.free.invalidation_paths"
	KeyCFFreeRequests      = "cloudfront.free.requests"
	KeyCFFreeGBOut         = "cloudfront.free.gb_out"
	KeyCFFreeFunctions     = "cloudfront.free.function_invocations"
	KeyAlarmMetric         = "cloudwatch.alarm_metric.month"
	KeyDashboard           = "cloudwatch.dashboard.month"
	KeyCustomMetric        = "cloudwatch.custom_metric.month"
	KeyLogsIngestGB        = "cloudwatch.logs_ingest.gb"
	KeyLogsStoreGB         = "cloudwatch.logs_store.gb_month"
	KeyFreeAlarmMetrics    = "cloudwatch.free.alarm_metrics"
	KeyFreeDashboards      = "cloudwatch.free.dashboards"
	KeyFreeCustomMetrics   = "cloudwatch.free.custom_metrics"
	KeyFreeLogsGB          = "cloudwatch.free.logs_gb"
	KeyS3GBMonth           = "s3.standard.gb_month"
	KeyS3PutPer1k          = "s3.put.per_1k"
	KeyS3GetPer1k          = "s3.get.per_1k"
	KeyCloudMapInstance    = "cloudmap.instance.month"
	KeyCloudMapDiscoverM   = "cloudmap.discover.per_million"
)

// InstanceKey is the on-demand hourly price key of an instance type.
func InstanceKey(typ string) string { return "ec2." + typ + ".hour" }

// SavingsPlanKey is the 1-year Compute Savings Plan hourly price key of an instance type.
func SavingsPlanKey(typ string) string { return "ec2." + typ + ".savings_plan_1yr.hour" }

// VolumeKey is the GB-month price key of an EBS volume type.
func VolumeKey(typ string) string { return "ebs." + typ + ".gb_month" }

// ErrPrices is returned (wrapped) for a price table that is incomplete or undocumented.
var ErrPrices = errors.New("price table")

var dateRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// LoadPrices reads and checks a price table: every value needs a unit, a source and the date
// it was read.
func LoadPrices(path string) (*Prices, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load prices: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Prices
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("load prices %s: %w (the format is infra/prices/README.md's)", path, err)
	}
	p.File = path
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("load prices %s: %w", path, err)
	}
	return &p, nil
}

// Check lists every value without a unit, a source or a read date, and a missing region,
// currency or hours a month.
func (p *Prices) Check() error {
	var probs []string
	if p.Region == "" || p.Currency == "" || !dateRe.MatchString(p.Recorded) {
		probs = append(probs, "region, currency and recorded (yyyy-mm-dd) are required")
	}
	if p.Values[KeyHoursPerMonth].Value <= 0 {
		probs = append(probs, KeyHoursPerMonth+" is required")
	}
	for _, k := range p.Keys() {
		v := p.Values[k]
		switch {
		case strings.TrimSpace(v.Unit) == "":
			probs = append(probs, k+": no unit")
		case strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v.Source), NotVerified)) == "":
			probs = append(probs, k+`: no source (name the offer file or page; write "not verified: <why>" when none could be checked)`)
		case !dateRe.MatchString(v.Read):
			probs = append(probs, k+": read date must be yyyy-mm-dd")
		case v.Value < 0:
			probs = append(probs, k+": negative price")
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w:\n  - %s", ErrPrices, strings.Join(probs, "\n  - "))
	}
	return nil
}

// Keys returns the price keys in order.
func (p *Prices) Keys() []string {
	keys := make([]string, 0, len(p.Values))
	for k := range p.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// HoursPerMonth is the month the hourly prices are multiplied by.
func (p *Prices) HoursPerMonth() float64 { return p.Values[KeyHoursPerMonth].Value }

// LatestPrices returns the newest <region>-<date>.json in dir (dates sort as text).
func LatestPrices(dir, region string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, region+"-*.json"))
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("no price table for %s in %s: record one as %s-<yyyy-mm-dd>.json or run `go tool mage infra:prices`", region, dir, region)
	}
	sort.Strings(files)
	return files[len(files)-1], nil
}

// lookup reads prices by key and remembers which were used and which were missing, so one
// estimate reports every missing price at once and lists the unverified ones it relied on.
type lookup struct {
	p       *Prices
	used    map[string]bool
	missing map[string]string // key -> what needed it
}

func newLookup(p *Prices) *lookup {
	return &lookup{p: p, used: map[string]bool{}, missing: map[string]string{}}
}

func (l *lookup) get(key, why string) float64 {
	v, ok := l.p.Values[key]
	if !ok {
		if _, seen := l.missing[key]; !seen {
			l.missing[key] = why
		}
		return 0
	}
	l.used[key] = true
	return v.Value
}

func (l *lookup) has(key string) bool {
	_, ok := l.p.Values[key]
	return ok
}

func (l *lookup) err() error {
	if len(l.missing) == 0 {
		return nil
	}
	keys := make([]string, 0, len(l.missing))
	for k := range l.missing {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = fmt.Sprintf("%s (for %s)", k, l.missing[k])
	}
	return fmt.Errorf("%w: %s has no price for:\n  - %s\n  add each with its unit, source and read date (or run `go tool mage infra:prices`)", ErrPrices, l.p.File, strings.Join(lines, "\n  - "))
}

// WritePrices writes p as <dir>/<region>-<recorded>.json and refuses to overwrite a table
// (a refresh records a new dated file; a second one the same day needs the first removed).
func WritePrices(dir string, p *Prices) (string, error) {
	if err := p.Check(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, p.Region+"-"+p.Recorded+".json")
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if os.IsExist(err) {
			return "", fmt.Errorf("write prices: %s already exists; remove it to record today's prices again", path)
		}
		return "", fmt.Errorf("write prices: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return "", fmt.Errorf("write prices %s: %w", path, err)
	}
	return path, f.Close()
}
