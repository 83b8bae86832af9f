// Package boxspec is the contract of the production box: every path, user, unit, port and
// environment key that the image recipe (packer/recipe), the systemd units (deploy/systemd), the
// CDK user data (infra), the first-boot code (internal/firstboot), zops-box and zops-backup must
// agree on. It is the one list of names: the recipe reads it through the generated shell include
// packer/recipe/contract.sh, and tests fail when a unit, the user data or the include disagrees.
//
// The box runs on Amazon Linux 2023 (production, PostgreSQL 16 from PGDG) or Debian bookworm
// (the local builder, PostgreSQL 15): the names here are the same on both; the recipe's
// packer/recipe/distro.sh maps them to each distribution's packages (symlinks under /opt/zmanim).
package boxspec

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Paths on the box.
const (
	// OptDir holds everything the project installs; the root volume is disposable.
	OptDir     = "/opt/zmanim"
	BinDir     = OptDir + "/bin"
	ZopsBox    = BinDir + "/zops-box"
	ZopsBackup = "/usr/local/bin/zops-backup" // the backup units' ExecStart (internal/backup.UnitConfigFor)
	Restic     = "/usr/local/bin/restic"      // internal/backup.ProdRestic
	// PGBinDir links to the distribution's PostgreSQL server programs (Debian
	// /usr/lib/postgresql/15/bin, PGDG EL9 /usr/pgsql-16/bin), so units and code name one path.
	PGBinDir = OptDir + "/pgbin"
	// RedisServer links to the Redis-7-compatible server (Debian redis-server, AL2023 valkey-server).
	RedisServer = BinDir + "/redis-server"
	// Releases and Current are the on-box release layout (internal/release.Agent).
	Releases  = OptDir + "/releases"
	Current   = OptDir + "/current"
	APIBinary = "zmanim-api"
	APIPath   = Current + "/" + APIBinary

	ConfDir = "/etc/zmanim"
	// APIEnvFile is the API's EnvironmentFile=, written by first boot from SSM (mode 0640,
	// root:zmanim). It holds exactly the keys of APIEnv.
	APIEnvFile = ConfDir + "/api.env"
	// InstanceFile holds the instance-specific inputs of first boot (InstanceKeys), written by
	// the CDK user data in production and by the local proof here.
	InstanceFile = ConfDir + "/instance.env"
	// PGConf is included by postgresql.conf on the data volume (settings owned by the image).
	PGConf    = ConfDir + "/postgresql.conf"
	RedisConf = ConfDir + "/redis.conf"

	DataDir    = "/data"
	PGData     = DataDir + "/postgres"
	RedisDir   = DataDir + "/redis"
	WALArchive = DataDir + "/wal-archive" // internal/backup.ProdWALArchive
	Scratch    = DataDir + "/zops-scratch"
	// DataLabel and DataFSType describe the filesystem first boot creates on a blank volume.
	DataLabel  = "zmanim-data"
	DataFSType = "xfs"

	// PGSocketDir is where PostgreSQL puts its Unix socket; the API and the backup jobs connect
	// there (peer authentication, no password on the box).
	PGSocketDir = "/run/postgresql"
	// ContractFile is packer/recipe/contract.sh installed on the image, for the box's scripts.
	ContractFile = OptDir + "/contract.sh"
)

// Users and groups.
const (
	User       = "zmanim" // runs the API (zops-box and the API binary)
	Group      = "zmanim" // may read APIEnvFile
	PGUser     = "postgres"
	RedisUser  = "redis"
	Database   = "zmanim"
	DBRole     = User // the API's database role (peer authentication as User)
	BackupUser = PGUser
)

// Ports on the box's loopback (PostgreSQL and Redis) and on its interface (the API socket).
const (
	PGPort    = 5432
	RedisPort = 6379
	APIPort   = 8080
)

// Units of the box. The distribution's own postgresql/redis units are masked by the recipe:
// the box runs its own, with data on /data and the same name on every distribution.
const (
	UnitFirstBoot  = "zops-firstboot.service"
	UnitTarget     = "zmanim.target"
	UnitPostgres   = "zmanim-postgres.service"
	UnitRedis      = "zmanim-redis.service"
	UnitAPI        = "zmanim-api.service"
	UnitAPISocket  = "zmanim-api.socket"
	UnitBackup     = "zops-backup.service"
	UnitVerify     = "zops-backup-verify.service"
	UnitBase       = "zops-basebackup.service"
	UnitWALShip    = "zops-wal-ship.service"
	UnitNotify     = "zops-backup-notify@.service"
	TimerBackup    = "zops-backup.timer"
	TimerVerify    = "zops-backup-verify.timer"
	TimerBase      = "zops-basebackup.timer"
	TimerWALShip   = "zops-wal-ship.timer"
	UnitCWAgent    = "amazon-cloudwatch-agent.service" // production only (AL2023 package)
	UnitsDir       = "/etc/systemd/system"
	SystemdJournal = "systemd-journal"
)

// Timers are every backup timer; zmanim.target wants all of them (the WAL and base-backup
// timers included: point-in-time recovery needs both).
var Timers = []string{TimerBackup, TimerVerify, TimerBase, TimerWALShip}

// Services are what zmanim.target starts once first boot has succeeded, in start order.
var Services = []string{UnitPostgres, UnitRedis, UnitAPISocket, UnitAPI}

// TargetWants is the Wants= list of zmanim.target.
func TargetWants() []string { return append(append([]string{}, Services...), Timers...) }

// Units lists every unit file the image installs into UnitsDir.
func Units() []string {
	u := []string{UnitFirstBoot, UnitTarget, UnitPostgres, UnitRedis, UnitAPI, UnitAPISocket,
		UnitBackup, UnitVerify, UnitBase, UnitWALShip, UnitNotify}
	return append(u, Timers...)
}

// Source says where first boot takes the value of an environment key from.
type Source string

const (
	FromSecret Source = "ssm-secret" // SecureString <prefix>/<Param>, decrypted
	FromConfig Source = "ssm-config" // a field of the JSON String <prefix>/config
	FromFixed  Source = "fixed"      // a value of this contract (the box's own sockets)
)

// EnvKey is one line of the API's environment file.
type EnvKey struct {
	Name   string
	Source Source
	Param  string // SSM parameter (FromSecret) or JSON field of <prefix>/config (FromConfig)
	Value  string // FromFixed
}

// APIDatabaseURL is the API's connection: the local socket, peer authentication as User.
var APIDatabaseURL = fmt.Sprintf("postgres://%s@/%s?host=%s", DBRole, Database, PGSocketDir)

// BackupDatabaseURL is the backup jobs' connection (they run as PGUser).
var BackupDatabaseURL = fmt.Sprintf("postgres://%s@/%s?host=%s", PGUser, Database, PGSocketDir)

// RedisAddr is where the box's Redis listens.
var RedisAddr = fmt.Sprintf("127.0.0.1:%d", RedisPort)

// Config fields of the <prefix>/config JSON parameter that first boot reads (infra/compute.go
// writes them).
const (
	ConfigOriginHeader = "origin_verify_header"
	ConfigJWKSURL      = "jwks_url"
	ConfigJWTIssuer    = "jwt_issuer"
	ConfigJWTAudience  = "jwt_audience"
)

// Parameter names under the SSM prefix (the same as internal/config.Param*; a test checks).
const (
	ParamOriginVerify = "origin-verify-secret"
	ParamConfig       = "config"
	ParamResticPass   = "restic-password"
	ParamClerkSecret  = "clerk-secret-key"
	ParamPGPassword   = "postgres-password"
	ParamCWAgent      = "cloudwatch-agent" // the CloudWatch agent's configuration (production)
)

// LogFile is the journal of the box's units as a file (zmanim-journal-export), tailed by the
// CloudWatch agent; CWAgentCtl is the agent's control program (installed on AL2023 only).
const (
	LogFile    = "/var/log/zmanim/box.log"
	CWAgentCtl = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
)

// APIEnv is the API's environment, every key and where it comes from. Nothing else goes into
// APIEnvFile: not the restic password (the backup jobs read theirs from SSM themselves), not
// the Clerk secret or the PostgreSQL password (the API verifies tokens against the JWKS and
// reaches PostgreSQL over the local socket).
var APIEnv = []EnvKey{
	{Name: "ZMANIM_DATABASE_URL", Source: FromFixed, Value: APIDatabaseURL},
	{Name: "ZMANIM_REDIS_ADDR", Source: FromFixed, Value: RedisAddr},
	{Name: "ZMANIM_JWKS_URL", Source: FromConfig, Param: ConfigJWKSURL},
	{Name: "ZMANIM_JWT_ISSUER", Source: FromConfig, Param: ConfigJWTIssuer},
	{Name: "ZMANIM_JWT_AUDIENCE", Source: FromConfig, Param: ConfigJWTAudience},
	{Name: "ZMANIM_ORIGIN_VERIFY_HEADER", Source: FromConfig, Param: ConfigOriginHeader},
	{Name: "ZMANIM_ORIGIN_VERIFY_SECRET", Source: FromSecret, Param: ParamOriginVerify},
}

// APIEnvNames returns the key names of APIEnv.
func APIEnvNames() []string {
	out := make([]string, len(APIEnv))
	for i, k := range APIEnv {
		out[i] = k.Name
	}
	return out
}

// Instance-specific inputs of first boot: lines of InstanceFile. The AWS_* names are the ones
// aws-sdk-go-v2 itself honours, so the same file points the SDK at the twin locally.
const (
	KeyRegion       = "ZOPS_REGION"     // also an internal/config override: zops-backup reads it
	KeySSMPrefix    = "ZOPS_SSM_PREFIX" // also an internal/config override
	KeyVolumeID     = "ZOPS_DATA_VOLUME_ID"
	KeyDataDevice   = "ZOPS_DATA_DEVICE" // a device path instead of the volume id (local proof)
	KeyDeviceWait   = "ZOPS_DATA_WAIT"   // how long to wait for the volume (Go duration, default 10m)
	KeySSMEndpoint  = "AWS_ENDPOINT_URL_SSM"
	KeyIMDSEndpoint = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
)

// InstanceKeys are the keys InstanceFile may hold.
var InstanceKeys = []string{KeyRegion, KeySSMPrefix, KeyVolumeID, KeyDataDevice, KeyDeviceWait, KeySSMEndpoint, KeyIMDSEndpoint}

// VolumeLink is the udev link of an attached EBS volume on Nitro instances, where the device
// name requested at attachment is ignored (the volume id without its dash).
func VolumeLink(volumeID string) string {
	return "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_" + strings.ReplaceAll(volumeID, "-", "")
}

// shellVars are the names the recipe sees in contract.sh.
func shellVars() map[string]string {
	return map[string]string{
		"ZB_OPT_DIR": OptDir, "ZB_BIN_DIR": BinDir, "ZB_ZOPS_BOX": ZopsBox, "ZB_ZOPS_BACKUP": ZopsBackup,
		"ZB_RESTIC": Restic, "ZB_PG_BIN_DIR": PGBinDir, "ZB_REDIS_SERVER": RedisServer,
		"ZB_RELEASES": Releases, "ZB_CURRENT": Current, "ZB_API_BINARY": APIBinary,
		"ZB_CONTRACT_FILE": ContractFile, "ZB_LOG_FILE": LogFile, "ZB_CW_AGENT_CTL": CWAgentCtl, "ZB_CONF_DIR": ConfDir, "ZB_API_ENV_FILE": APIEnvFile, "ZB_INSTANCE_FILE": InstanceFile,
		"ZB_PG_CONF": PGConf, "ZB_REDIS_CONF": RedisConf,
		"ZB_DATA_DIR": DataDir, "ZB_PG_DATA": PGData, "ZB_REDIS_DIR": RedisDir, "ZB_WAL_ARCHIVE": WALArchive,
		"ZB_SCRATCH": Scratch, "ZB_PG_SOCKET_DIR": PGSocketDir,
		"ZB_USER": User, "ZB_GROUP": Group, "ZB_DATABASE": Database, "ZB_DB_ROLE": DBRole, "ZB_PG_USER": PGUser, "ZB_REDIS_USER": RedisUser,
		"ZB_PG_PORT": fmt.Sprint(PGPort), "ZB_REDIS_PORT": fmt.Sprint(RedisPort), "ZB_API_PORT": fmt.Sprint(APIPort),
		"ZB_UNITS_DIR": UnitsDir, "ZB_UNIT_FIRSTBOOT": UnitFirstBoot, "ZB_UNIT_TARGET": UnitTarget,
		"ZB_UNITS": strings.Join(Units(), " "), "ZB_TIMERS": strings.Join(Timers, " "),
		"ZB_SERVICES": strings.Join(Services, " "),
	}
}

// ShellInclude renders packer/recipe/contract.sh: the contract as readonly shell variables.
func ShellInclude() string {
	vars := shellVars()
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# shellcheck shell=bash\n")
	b.WriteString("# Generated from internal/boxspec, the box contract (go test ./internal/boxspec -update); do not edit.\n")
	b.WriteString("# A test fails when this file and the package disagree.\n")
	for _, k := range names {
		fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(vars[k]))
	}
	fmt.Fprintf(&b, "export %s\n", strings.Join(names, " "))
	return b.String()
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// InstallArgv is the release's stage step on the box: `zops-box install`, which lowers itself
// to nice 10 so that downloading and hashing the next release takes no CPU from the API
// serving, then prunes installs beyond keep (never the serving one or the new one).
// `mage release` sends it over SSM Run Command; the box proof runs it inside the booted image.
func InstallArgv(bucket, region string, keep int, version string) []string {
	argv := []string{ZopsBox, "install", "--bucket", bucket}
	if region != "" {
		argv = append(argv, "--region", region)
	}
	if keep > 0 {
		argv = append(argv, "--keep", strconv.Itoa(keep))
	}
	return append(argv, version)
}
