package backup

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/restic"
	"github.com/shtetl/zmanim-ops/internal/tools"
	"github.com/shtetl/zmanim-ops/internal/twinstate"
)

// Options not (yet) in internal/config, read from ZOPS_* variables with these defaults. They
// are documented on the mage targets.
const (
	EnvPGURL     = "ZOPS_BACKUP_PG_URL"      // live database (default: twin zmanim DB / prod local socket)
	EnvRedis     = "ZOPS_BACKUP_REDIS_ADDR"  // Redis host:port ("" in the env var disables: set to "none")
	EnvHost      = "ZOPS_BACKUP_HOST"        // restic --host (default zmanim-<env>)
	EnvWALDir    = "ZOPS_BACKUP_WAL_DIR"     // WAL archive (twin <state>/pg/wal-archive, prod /data/wal-archive)
	EnvScratch   = "ZOPS_BACKUP_SCRATCH"     // scratch space (twin <state>/backup, prod /data/zops-scratch)
	EnvRetryLock = "ZOPS_BACKUP_RETRY_LOCK"  // wait for another host's restic lock (default 30m)
	EnvTimeout   = "ZOPS_BACKUP_TIMEOUT"     // whole-job deadline (default 2h)
	EnvRestic    = "ZOPS_RESTIC"             // restic binary (default: the pinned build)
	EnvRepo      = "ZOPS_BACKUP_REPOSITORY"  // full restic repository URL override
	EnvCompress  = "ZOPS_BACKUP_PG_COMPRESS" // pg_dump --compress (default 0: restic compresses)
)

// Paths and connections on the box, from its contract (the AMI recipe installs restic and
// first boot creates the data volume's directories).
const (
	ProdRestic     = boxspec.Restic
	ProdWALArchive = boxspec.WALArchive
	ProdScratch    = boxspec.Scratch
)

// ProdPGURL and ProdRedis are the live database and Redis of the box: the local socket with peer
// authentication as the postgres user (the units run the jobs as that user), Redis on loopback.
var (
	ProdPGURL = boxspec.BackupDatabaseURL
	ProdRedis = boxspec.RedisAddr
)

// Overrides are the backup options not (yet) in internal/config, read from the ZOPS_BACKUP_*
// variables named above by ReadOptions (targets.go); "" and 0 keep the defaults.
type Overrides struct {
	PGURL, Redis, Host, WALDir, Scratch, Restic, Repository string
	RetryLock                                               time.Duration // default 30m
	Timeout                                                 time.Duration // default 2h
	Compress                                                *int          // pg_dump --compress
	CacheDirectory                                          string        // systemd's CACHE_DIRECTORY on the box
}

// Deadline is the whole-job deadline (default 2h).
func (o Overrides) Deadline() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 2 * time.Hour
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// RepositoryURL is the restic repository of an environment: the backups bucket on the twin's
// S3 server or on AWS S3.
func RepositoryURL(env *config.Env, override string) string {
	if override != "" {
		return override
	}
	if env.IsTwin() {
		return fmt.Sprintf("s3:%s/%s/%s", env.URL(env.Twin.Ports.S3), env.Buckets.Backups, env.Backup.Repository)
	}
	return fmt.Sprintf("s3:s3.%s.amazonaws.com/%s/%s", env.Region, env.Buckets.Backups, env.Backup.Repository)
}

// FromConfig builds the jobs of an environment: repository and password (SSM SecureString
// restic-password), the live database and Redis, retention and size limits from the
// configuration, failure mail through SES to notify.to.
func FromConfig(ctx context.Context, env *config.Env, ov Overrides, log io.Writer) (*Job, error) {
	clients, err := awsx.New(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("backup: AWS clients for %s: %w", env.Name, err)
	}
	bin := ov.Restic
	if bin == "" && !env.IsTwin() {
		// On the box there is no Go toolchain: the AMI recipe installs the pinned restic.
		bin = ProdRestic
	}
	if bin == "" {
		if bin, err = tools.Ensure(ctx, "restic"); err != nil {
			return nil, fmt.Errorf("backup: restic: %w", err)
		}
	}
	pass, err := clients.Secret(ctx, config.ParamResticPass)
	if err != nil {
		return nil, fmt.Errorf("backup: repository password: %w", err)
	}
	repo := &restic.Repo{
		Bin:      bin,
		URL:      RepositoryURL(env, ov.Repository),
		Password: pass,
		Options:  []string{"s3.region=" + env.Region},
		CacheDir: filepath.Join(tools.CacheDir(), "restic-cache"),
	}
	repo.RetryLock = 30 * time.Minute
	if ov.RetryLock > 0 {
		repo.RetryLock = ov.RetryLock
	}
	j := &Job{
		Repo:         repo,
		Host:         or(ov.Host, "zmanim-"+env.Name),
		KeepDaily:    env.Backup.KeepDaily,
		MinDumpBytes: env.Backup.MinDumpBytes,
		Notifier:     &SESNotifier{Client: clients.SES, From: env.Notify.From, To: env.Notify.To},
		Log:          log,
		Env:          env.Name,
		Metrics:      metricsClient(env, clients.Config),
	}
	var pgURL, redis string
	if env.IsTwin() {
		sec, err := twinstate.Dir(env.Twin.StateDir).ReadSecrets()
		if err != nil {
			return nil, err
		}
		repo.Options = append(repo.Options, "s3.bucket-lookup=path")
		// The box's own S3 user, as on the box (its role): it may not delete versions, so a
		// compromised box cannot destroy the history (issue 14 finding 3).
		ak, sk := sec.S3AccessKey, sec.S3SecretKey
		if st := twinstate.Dir(env.Twin.StateDir); st.BoxS3Ready(sec) {
			ak, sk = sec.BoxS3AccessKey, sec.BoxS3SecretKey
		}
		repo.Env = []string{"AWS_ACCESS_KEY_ID=" + ak, "AWS_SECRET_ACCESS_KEY=" + sk}
		pgURL = fmt.Sprintf("postgres://postgres:%s@%s:%d/zmanim", sec.PGPassword, env.Twin.Host, env.Twin.Ports.Postgres)
		redis = env.Twin.Host + ":" + strconv.Itoa(env.Twin.Ports.Redis)
		j.WALArchiveDir = filepath.Join(env.Twin.StateDir, "pg", "wal-archive")
		j.ScratchDir = filepath.Join(env.Twin.StateDir, "backup")
	} else {
		// On the box: local socket, peer authentication as the postgres user; restic finds
		// S3 credentials through the instance role itself.
		pgURL = ProdPGURL
		redis = ProdRedis
		j.WALArchiveDir = ProdWALArchive
		j.ScratchDir = ProdScratch
		repo.CacheDir = or(ov.CacheDirectory, "/var/cache/zops/restic") // systemd CacheDirectory=
	}
	pgURL = or(ov.PGURL, pgURL)
	j.PG, err = pgtool.ParseURL(pgURL)
	if err != nil {
		return nil, fmt.Errorf("backup: %s: %w", EnvPGURL, err)
	}
	j.RedisAddr = or(ov.Redis, redis)
	if j.RedisAddr == "none" {
		j.RedisAddr = ""
	}
	if ov.Compress != nil {
		j.DumpCompress = *ov.Compress
	}
	j.WALArchiveDir = or(ov.WALDir, j.WALArchiveDir)
	j.ScratchDir = or(ov.Scratch, j.ScratchDir)
	return j, nil
}

// metricsClient is CloudWatch: kumo on the twin, else the SDK's own resolution (which honours
// AWS_ENDPOINT_URL_CLOUDWATCH, as the local box proof uses).
func metricsClient(env *config.Env, cfg aws.Config) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		if env.IsTwin() {
			o.BaseEndpoint = aws.String(awsx.TwinEndpoints(env).AWS)
		}
	})
}
