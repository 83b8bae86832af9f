package twin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/tools"
)

// Health is one component's state, as twin:status prints it.
type Health struct {
	Name    string `json:"name"`
	URL     string `json:"url"`
	Port    int    `json:"port"`
	Version string `json:"version,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Healthy bool   `json:"healthy"`
	Detail  string `json:"detail,omitempty"`
}

// ---- S3: versitygw ----

func (t *Twin) startS3(ctx context.Context) error {
	p := proc{"versitygw", t.st}
	if _, ok := p.pid(); !ok {
		if err := portFree(t.env.Twin.Host, t.env.Twin.Ports.S3, "s3"); err != nil {
			return err
		}
		bin, err := tools.Ensure(ctx, "versitygw")
		if err != nil {
			return err
		}
		// The buckets stay in s3/ (as before); versions and the box user live beside it.
		srv := S3Server{Bin: bin, DataDir: t.st.Path("s3"), VersioningDir: t.st.Path("s3-versions"), IAMDir: t.st.S3IAMDir(),
			Addr: t.addr(t.env.Twin.Ports.S3), Region: t.env.Region,
			RootAccess: t.sec.S3AccessKey, RootSecret: t.sec.S3SecretKey, BoxAccess: t.sec.BoxS3AccessKey, BoxSecret: t.sec.BoxS3SecretKey}
		cmd, err := srv.Command()
		if err != nil {
			return err
		}
		if err := p.start(cmd); err != nil {
			return err
		}
		t.started = append(t.started, "versitygw")
	}
	if err := waitFor(ctx, p, 30*time.Second, func(ctx context.Context) error {
		_, err := t.aws.S3.ListBuckets(ctx, &s3.ListBucketsInput{})
		return err
	}); err != nil {
		return err
	}
	for _, b := range t.env.Buckets.All() {
		if _, err := t.aws.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)}); err == nil {
			continue
		}
		if _, err := t.aws.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	if !t.st.BoxS3Ready(t.sec) {
		// Started by an older twin:up: no versioning directory, no box user. Say so rather
		// than fail; backups use the root credentials until the restart.
		fmt.Fprintf(t.out, "twin: the running S3 server predates backup protection (versioning, box user); run twin:down and twin:up to apply it\n")
		return nil
	}
	return ProtectBackups(ctx, t.aws.S3, t.env.Buckets.Backups, t.sec.BoxS3AccessKey)
}

func (t *Twin) healthS3(ctx context.Context) Health {
	h := Health{Name: "s3", URL: t.env.URL(t.env.Twin.Ports.S3), Port: t.env.Twin.Ports.S3, Version: "versitygw " + toolVersion("versitygw")}
	h.PID, _ = proc{"versitygw", t.st}.pid()
	if t.aws == nil {
		h.Detail = "no credentials (twin never started)"
		return h
	}
	var missing []string
	for _, b := range t.env.Buckets.All() {
		if _, err := t.aws.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)}); err != nil {
			missing = append(missing, b)
		}
	}
	h.Healthy = h.PID > 0 && len(missing) == 0
	if len(missing) > 0 {
		h.Detail = "missing buckets: " + strings.Join(missing, ", ")
	} else {
		h.Detail = "buckets: " + strings.Join(t.env.Buckets.All(), ", ")
	}
	return h
}

// ---- AWS control plane: kumo (SSM, SES v2, ...) ----

func (t *Twin) startKumo(ctx context.Context) error {
	p := proc{"kumo", t.st}
	if _, ok := p.pid(); !ok {
		if err := portFree(t.env.Twin.Host, t.env.Twin.Ports.AWS, "aws"); err != nil {
			return err
		}
		bin, err := tools.Ensure(ctx, "kumo")
		if err != nil {
			return err
		}
		dir := t.st.Path("kumo")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		cmd := exec.Command(bin, "--host", t.env.Twin.Host, "--port", strconv.Itoa(t.env.Twin.Ports.AWS))
		cmd.Env = append(os.Environ(), "KUMO_DATA_DIR="+dir, "KUMO_LOG_LEVEL=warn")
		if err := p.start(cmd); err != nil {
			return err
		}
		t.started = append(t.started, "kumo")
	}
	if err := waitFor(ctx, p, 30*time.Second, func(ctx context.Context) error {
		_, err := t.aws.SSM.DescribeParameters(ctx, &ssm.DescribeParametersInput{})
		return err
	}); err != nil {
		return err
	}
	// The twin's SSM holds the same parameters production does (secrets as SecureString).
	for name, v := range map[string]string{
		config.ParamClerkSecret: t.sec.ClerkSecret, config.ParamPGPassword: t.sec.PGPassword,
		config.ParamResticPass: t.sec.ResticPassword,
	} {
		if err := t.aws.PutSecret(ctx, name, v); err != nil {
			return err
		}
	}
	// The origin-verify secret is a String parameter in production too: CloudFormation can
	// resolve only String parameters into the API Gateway integration's header mapping.
	if err := t.aws.PutString(ctx, config.ParamOriginVerify, t.sec.OriginVerify); err != nil {
		return err
	}
	return t.aws.PutString(ctx, "config", fmt.Sprintf(`{"env":%q,"region":%q,"domain":%q}`, t.env.Name, t.env.Region, t.env.Domain))
}

func (t *Twin) healthKumo(ctx context.Context) Health {
	h := Health{Name: "aws", URL: t.env.URL(t.env.Twin.Ports.AWS), Port: t.env.Twin.Ports.AWS, Version: "kumo " + toolVersion("kumo")}
	h.PID, _ = proc{"kumo", t.st}.pid()
	if t.aws == nil {
		return h
	}
	_, err := t.aws.Secret(ctx, "restic-password")
	h.Healthy = h.PID > 0 && err == nil
	h.Detail = "SSM, SES v2 (sent mail at /kumo/ses/v2/sent-emails)"
	if err != nil {
		h.Detail = err.Error()
	}
	return h
}

// ---- PostgreSQL + PostGIS ----

// pgBinDir is the newest installed PostgreSQL's server programs.
func pgBinDir(ctx context.Context) (string, error) {
	p, err := pgtool.FindProgram(ctx, "pg_ctl", 0)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errMissingPackages, err)
	}
	return filepath.Dir(p.Path), nil
}

// asPostgres runs PostgreSQL's programs as the postgres user when we are root (initdb refuses
// to run as root), as the current user otherwise.
func asPostgres(cmd *exec.Cmd) (*exec.Cmd, error) {
	cred, err := pgtool.ServerUser()
	if err != nil || cred == nil {
		return cmd, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd, nil
}

func chownPostgres(paths ...string) error {
	cred, err := pgtool.ServerUser()
	if err != nil {
		return err
	}
	return pgtool.ChownTree(cred, paths...)
}

func (t *Twin) pgData() string { return filepath.Join(t.pgDir(), "data") }

// PGWALArchive is where the twin's PostgreSQL archives WAL (production: /data/wal-archive).
func (t *Twin) PGWALArchive() string { return filepath.Join(t.pgDir(), "wal-archive") }

func (t *Twin) pgRunning() (int, bool) {
	b, err := os.ReadFile(filepath.Join(t.pgData(), "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0, false
	}
	return pid, true
}

func (t *Twin) runPG(ctx context.Context, bin string, args ...string) error {
	dir, err := pgBinDir(ctx)
	if err != nil {
		return err
	}
	cmd, err := asPostgres(exec.CommandContext(ctx, filepath.Join(dir, bin), args...))
	if err != nil {
		return err
	}
	cmd.Dir = "/" // the postgres user may not be able to enter our working directory
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", bin, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (t *Twin) startPostgres(ctx context.Context) error {
	if _, ok := t.pgRunning(); !ok {
		if err := portFree(t.env.Twin.Host, t.env.Twin.Ports.Postgres, "postgres"); err != nil {
			return err
		}
		if err := t.ensurePGDir(); err != nil {
			return err
		}
		for _, d := range []string{t.pgDir(), filepath.Join(t.pgDir(), "run"), t.PGWALArchive(), t.st.Path("logs")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if _, err := os.Stat(filepath.Join(t.pgData(), "PG_VERSION")); err != nil {
			pw := filepath.Join(t.pgDir(), "pwfile")
			if err := os.WriteFile(pw, []byte(t.sec.PGPassword+"\n"), 0o600); err != nil {
				return err
			}
			if err := chownPostgres(t.pgDir()); err != nil {
				return err
			}
			err := t.runPG(ctx, "initdb", "-D", t.pgData(), "-U", "postgres", "--pwfile", pw,
				"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale")
			os.Remove(pw)
			if err != nil {
				return err
			}
			// WAL segments are copied under a temporary name and renamed, so the shipper
			// (backup:wal) never stores a half-copied segment.
			conf := fmt.Sprintf(`
# zmanim-ops twin
listen_addresses = '%s'
port = %d
unix_socket_directories = '%s'
wal_level = replica
archive_mode = on
archive_command = 'test ! -f %s/%%f && cp %%p %s/%%f.tmp && mv %s/%%f.tmp %s/%%f'
archive_timeout = 60
max_wal_senders = 4
# pg_basebackup -X fetch (backup:base) collects WAL at the end: keep enough that a checkpoint
# during the base backup does not recycle it (seen: "COPY stream ended before last file was finished").
wal_keep_size = 512MB
log_min_messages = warning
`, t.env.Twin.Host, t.env.Twin.Ports.Postgres, filepath.Join(t.pgDir(), "run"), t.PGWALArchive(), t.PGWALArchive(), t.PGWALArchive(), t.PGWALArchive())
			f, err := os.OpenFile(filepath.Join(t.pgData(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			_, err = f.WriteString(conf)
			f.Close()
			if err != nil {
				return err
			}
		}
		if err := chownPostgres(t.pgDir()); err != nil {
			return err
		}
		logf := t.pgLog()
		if logf != t.st.Log("postgres") {
			_ = os.Remove(t.st.Log("postgres"))
			_ = os.Symlink(logf, t.st.Log("postgres"))
		}
		if f, err := os.OpenFile(logf, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			f.Close()
			_ = chownPostgres(logf)
		}
		if err := t.runPG(ctx, "pg_ctl", "-D", t.pgData(), "-l", logf, "-w", "-t", "60", "start"); err != nil {
			return fmt.Errorf("start postgres: %w\n--- %s ---\n%s", err, logf, tailFile(logf, 15))
		}
		t.started = append(t.started, "postgres")
	}
	conn, err := pgx.Connect(ctx, t.PGURL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to the twin's postgres: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zmanim')`).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE ROLE zmanim LOGIN PASSWORD '%s'`, strings.ReplaceAll(t.sec.PGPassword, "'", "''"))); err != nil {
			return fmt.Errorf("create role zmanim: %w", err)
		}
	}
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'zmanim')`).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE DATABASE zmanim OWNER zmanim`); err != nil {
			return fmt.Errorf("create database zmanim: %w", err)
		}
	}
	db, err := pgx.Connect(ctx, t.PGURL("zmanim"))
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS postgis`); err != nil {
		return fmt.Errorf("create extension postgis (is postgresql-15-postgis-3 installed?): %w", err)
	}
	return nil
}

// PGURL is the superuser URL of a database of the twin's PostgreSQL.
func (t *Twin) PGURL(db string) string {
	return fmt.Sprintf("postgres://postgres:%s@%s/%s?sslmode=disable", t.sec.PGPassword, t.addr(t.env.Twin.Ports.Postgres), db)
}

// AppPGURL is the API's URL (role zmanim, database zmanim).
func (t *Twin) AppPGURL() string {
	return fmt.Sprintf("postgres://zmanim:%s@%s/zmanim?sslmode=disable", t.sec.PGPassword, t.addr(t.env.Twin.Ports.Postgres))
}

// AppPGSocketURL is the API's connection on the twin's box, as on the real one
// (boxspec.APIDatabaseURL): PostgreSQL's unix socket, no password (trust here, peer on the
// box). Over TCP every new connection paid SCRAM's key derivation on both sides, which the
// box never does, at each release's connection warm-up.
func (t *Twin) AppPGSocketURL() string {
	return fmt.Sprintf("postgres://zmanim@/zmanim?host=%s&port=%d&sslmode=disable", url.QueryEscape(filepath.Join(t.pgDir(), "run")), t.env.Twin.Ports.Postgres)
}

func (t *Twin) stopPostgres(ctx context.Context) error {
	if _, ok := t.pgRunning(); !ok {
		return nil
	}
	return t.runPG(ctx, "pg_ctl", "-D", t.pgData(), "-m", "fast", "-w", "stop")
}

func (t *Twin) healthPostgres(ctx context.Context) Health {
	h := Health{Name: "postgres", URL: "postgres://127.0.0.1:" + strconv.Itoa(t.env.Twin.Ports.Postgres) + "/zmanim", Port: t.env.Twin.Ports.Postgres}
	h.PID, _ = t.pgRunning()
	if h.PID == 0 {
		h.Detail = "not running"
		return h
	}
	conn, err := pgx.Connect(ctx, t.PGURL("zmanim"))
	if err != nil {
		h.Detail = err.Error()
		return h
	}
	defer conn.Close(ctx)
	var v, postgis string
	var cities int64
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), coalesce((SELECT extversion FROM pg_extension WHERE extname='postgis'), 'missing'),
		coalesce((SELECT reltuples::bigint FROM pg_class WHERE relname = 'cities'), 0)`).Scan(&v, &postgis, &cities)
	if err != nil {
		h.Detail = err.Error()
		return h
	}
	h.Version = "PostgreSQL " + v + ", PostGIS " + postgis
	h.Healthy = postgis != "missing"
	h.Detail = fmt.Sprintf("~%d cities; WAL archived to %s", cities, t.PGWALArchive())
	return h
}

// ---- Redis ----

func (t *Twin) redisClient() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: t.addr(t.env.Twin.Ports.Redis)})
}

func (t *Twin) startRedis(ctx context.Context) error {
	p := proc{"redis", t.st}
	if _, ok := p.pid(); !ok {
		if err := portFree(t.env.Twin.Host, t.env.Twin.Ports.Redis, "redis"); err != nil {
			return err
		}
		bin, err := exec.LookPath("redis-server")
		if err != nil {
			return errMissingPackages
		}
		dir := t.st.Path("redis")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		conf := fmt.Sprintf("bind %s\nport %d\ndir %s\nappendonly yes\nsave 60 1000\nsave 300 10\nprotected-mode yes\ndaemonize no\nlogfile \"\"\n",
			t.env.Twin.Host, t.env.Twin.Ports.Redis, dir)
		cf := filepath.Join(dir, "redis.conf")
		if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
			return err
		}
		if err := p.start(exec.Command(bin, cf)); err != nil {
			return err
		}
		t.started = append(t.started, "redis")
	}
	rc := t.redisClient()
	defer rc.Close()
	return waitFor(ctx, p, 20*time.Second, func(ctx context.Context) error { return rc.Ping(ctx).Err() })
}

func (t *Twin) healthRedis(ctx context.Context) Health {
	h := Health{Name: "redis", URL: "redis://" + t.addr(t.env.Twin.Ports.Redis), Port: t.env.Twin.Ports.Redis}
	h.PID, _ = proc{"redis", t.st}.pid()
	rc := t.redisClient()
	defer rc.Close()
	info, err := rc.Info(ctx, "server", "persistence").Result()
	if err != nil {
		h.Detail = err.Error()
		return h
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
			h.Version = "Redis " + v
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "aof_enabled:"); ok {
			h.Detail = "appendonly=" + map[string]string{"1": "yes", "0": "no"}[v]
		}
	}
	h.Healthy = true
	return h
}

// ---- the daemon: JWT issuer, box, gateway, edge ----

func (t *Twin) httpHealth(ctx context.Context, name string, port int, path string, hdr map[string]string, want int) Health {
	h := Health{Name: name, URL: t.env.URL(port), Port: port}
	h.PID, _ = proc{"zops-twind", t.st}.pid()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.env.URL(port)+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.Detail = err.Error()
		return h
	}
	resp.Body.Close()
	h.Healthy = resp.StatusCode == want
	h.Detail = fmt.Sprintf("GET %s: %s", path, resp.Status)
	return h
}

func (t *Twin) addr(port int) string { return net.JoinHostPort(t.env.Twin.Host, strconv.Itoa(port)) }

func toolVersion(name string) string {
	v, err := tools.Version(name)
	if err != nil {
		return "?"
	}
	return v
}

var errMissingPackages = errors.New("missing Debian packages")

func (t *Twin) awsClients(ctx context.Context) (*awsx.Clients, error) {
	return awsx.NewTwin(ctx, t.env, awsx.TwinEndpoints(t.env), t.sec.S3AccessKey, t.sec.S3SecretKey)
}
