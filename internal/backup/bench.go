package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/jackc/pgx/v5"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/benchkit"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/restic"
	"github.com/shtetl/zmanim-ops/internal/tools"
)

// BenchOptions configure bench:backup.
type BenchOptions struct {
	Rows int  // rows in the bench cities table (default 1,000,000)
	Runs int  // timed runs of each side (default 2); medians are reported
	Keep bool // keep the bench database
	Out  io.Writer
	// Explicit test components (ZOPS_TEST_*, internal/testenv); without PGURL and S3Endpoint
	// the bench uses the configured environment (the twin).
	PGURL, S3Endpoint, S3AccessKey, S3SecretKey, Restic string
	// S3Region is the region the S3 server checks signatures for (the twin's versitygw:
	// the configured region); default us-east-1.
	S3Region  string
	Overrides Overrides
}

// BenchDB is the bench database, created on the configured server.
const BenchDB = "zops_bench_backup"

// benchEnv is the job of the bench and where its repositories live.
type benchEnv struct {
	job    *Job
	s3     *s3.Client
	bucket string
	prefix string // repository prefix inside bucket; each run adds -<n>
	base   string // repository URL without the run suffix
}

// benchSetup prefers the explicit test components (ZOPS_TEST_*) and falls back to the twin.
func benchSetup(ctx context.Context, o BenchOptions, out io.Writer) (*benchEnv, error) {
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	prefix := "bench-backup-" + hex.EncodeToString(id)
	if pg, ep := o.PGURL, o.S3Endpoint; pg != "" && ep != "" {
		bin := o.Restic
		var err error
		if bin == "" {
			if bin, err = tools.Ensure(ctx, "restic"); err != nil {
				return nil, err
			}
		}
		ak, sk, region := o.S3AccessKey, o.S3SecretKey, o.S3Region
		if region == "" {
			region = "us-east-1"
		}
		bucket := "zops-test-backup"
		cl := awsx.NewS3(awsx.S3Endpoint{URL: ep, AccessKey: ak, SecretKey: sk, Region: region})
		if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil && !strings.Contains(err.Error(), "BucketAlready") {
			return nil, fmt.Errorf("bench bucket: %w", err)
		}
		conn, err := pgtool.ParseURL(pg)
		if err != nil {
			return nil, err
		}
		j := &Job{
			Repo: &restic.Repo{Bin: bin, Password: "bench-" + prefix, Options: []string{"s3.bucket-lookup=path", "s3.region=" + region},
				Env: []string{"AWS_ACCESS_KEY_ID=" + ak, "AWS_SECRET_ACCESS_KEY=" + sk}},
			PG: conn.WithDatabase(BenchDB), Host: "bench", KeepDaily: 7, MinDumpBytes: 4 << 10, Log: out,
		}
		j.ScratchDir, _ = os.MkdirTemp("", "zops-bench-backup-")
		return &benchEnv{job: j, s3: cl, bucket: bucket, prefix: prefix, base: fmt.Sprintf("s3:%s/%s/%s", ep, bucket, prefix)}, nil
	}
	env, err := config.Load()
	if err != nil {
		return nil, err
	}
	j, err := FromConfig(ctx, env, o.Overrides, out)
	if err != nil {
		return nil, err
	}
	clients, err := awsx.New(ctx, env)
	if err != nil {
		return nil, err
	}
	j.PG = j.PG.WithDatabase(BenchDB)
	j.Host = "bench"
	j.Notifier = nil
	prefix = env.Backup.Repository + "-" + prefix
	base := strings.TrimSuffix(RepositoryURL(env, o.Overrides.Repository), env.Backup.Repository) + prefix
	return &benchEnv{job: j, s3: clients.S3, bucket: env.Buckets.Backups, prefix: prefix, base: base}, nil
}

// Bench is bench:backup: bare `pg_dump -Fc > /dev/null` against backup:run's PostgreSQL step
// (pg_dump through restic into a fresh repository on S3), interleaved, then one drill.
func Bench(ctx context.Context, o BenchOptions) error {
	if o.Rows <= 0 {
		o.Rows = 1_000_000
	}
	if o.Runs <= 0 {
		o.Runs = 2
	}
	be, err := benchSetup(ctx, o, o.Out)
	if err != nil {
		return fmt.Errorf("bench:backup: %w", err)
	}
	j := be.job
	defer be.cleanup(context.WithoutCancel(ctx), o.Runs)
	if err := ensureBenchDB(ctx, j.PG, o.Rows, o.Out); err != nil {
		return err
	}
	if !o.Keep {
		defer func() { _ = dropDB(context.WithoutCancel(ctx), j.PG, BenchDB) }()
	}
	prog, err := pgtool.FindProgram(ctx, "pg_dump", 0)
	if err != nil {
		return err
	}
	bare := func(ctx context.Context, _ int) (float64, error) {
		start := time.Now()
		cmd := pgtool.Command{Program: prog, Conn: j.PG, Stdout: io.Discard, Args: []string{"--format=custom", "--no-password", "--dbname=" + BenchDB}}
		if err := cmd.Run(ctx); err != nil {
			return 0, fmt.Errorf("bench: bare pg_dump: %w", err)
		}
		return time.Since(start).Seconds(), nil
	}
	var sum restic.BackupSummary // of the latest backup, for the progress line
	backup := func(ctx context.Context, round int) (float64, error) {
		j.Repo.URL = be.base + "-" + strconv.Itoa(round)
		if err := j.Repo.Init(ctx); err != nil {
			return 0, fmt.Errorf("bench: init %s: %w", j.Repo.URL, err)
		}
		start := time.Now()
		var err error
		if sum, err = j.BackupPG(ctx); err != nil {
			return 0, fmt.Errorf("bench: backup: %w", err)
		}
		return time.Since(start).Seconds(), nil
	}
	samples, err := benchkit.Interleave(ctx, o.Runs, []benchkit.Side{{Name: "pg_dump", Run: bare}, {Name: "backup", Run: backup}},
		func(round int, side string, v float64) {
			if side == "pg_dump" {
				fmt.Fprintf(o.Out, "run %d: bare pg_dump -Fc %.1fs\n", round+1, v)
				return
			}
			fmt.Fprintf(o.Out, "run %d: backup (pg_dump --compress=%d | restic, %d MB in, %d MB stored) %.1fs\n",
				round+1, j.DumpCompress, sum.TotalBytesProcessed>>20, sum.DataAddedPacked>>20, v)
		})
	if err != nil {
		return err
	}
	res, err := j.Drill(ctx, DrillOptions{ScratchDB: BenchDB + "_drill"})
	if err != nil {
		return fmt.Errorf("bench: drill: %w", err)
	}
	d, b := benchkit.Median(samples[0]), benchkit.Median(samples[1])
	fmt.Fprintf(o.Out, "goals: backup <= 1.5x bare pg_dump (%.2fx), drill <= 60s (%.1fs: restore %.1fs + verify %.1fs)\n", b/d, res.Seconds, res.RestoreSecs, res.VerifySecs)
	fmt.Fprintln(o.Out, benchkit.Line("backup", benchkit.Float("dump_s", d, 2), benchkit.Float("backup_s", b, 2), benchkit.Float("ratio", b/d, 2), benchkit.Float("drill_s", res.Seconds, 1)))
	return nil
}

// ensureBenchDB creates the bench database with rows cities (PostGIS points) unless it has them.
func ensureBenchDB(ctx context.Context, db pgtool.Conn, rows int, out io.Writer) error {
	if c, err := pgx.Connect(ctx, db.URL()); err == nil {
		var n int64
		err := c.QueryRow(ctx, "SELECT count(*) FROM cities").Scan(&n)
		c.Close(ctx)
		if err == nil && n == int64(rows) {
			return nil
		}
	}
	fmt.Fprintf(out, "bench: creating %s with %d cities ...\n", BenchDB, rows)
	if err := recreateDB(ctx, db, BenchDB); err != nil {
		return err
	}
	c, err := pgx.Connect(ctx, db.URL())
	if err != nil {
		return fmt.Errorf("bench: connect %s: %w", db.Redacted(), err)
	}
	defer c.Close(ctx)
	for _, q := range []string{
		"CREATE EXTENSION IF NOT EXISTS postgis",
		`CREATE TABLE cities (id bigint PRIMARY KEY, name text NOT NULL, country text, population int, elevation int,
			timezone text, geom geometry(Point,4326))`,
		fmt.Sprintf(`INSERT INTO cities SELECT g, 'city-' || g || '-' || substr(md5(g::text),1,10), 'C' || (g %% 200),
			((g::bigint*7919) %% 5000000)::int, (g %% 3000) - 100, 'Zone/' || (g %% 400),
			ST_SetSRID(ST_MakePoint((g %% 36000)/100.0 - 180, (g %% 17000)/100.0 - 85), 4326)
			FROM generate_series(1, %d) g`, rows),
		"CREATE INDEX cities_geom ON cities USING gist (geom)",
		"ANALYZE cities",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("bench: seed: %w", err)
		}
	}
	return nil
}

// cleanup deletes the bench repositories from the bucket.
func (be *benchEnv) cleanup(ctx context.Context, runs int) {
	if be.job.ScratchDir != "" && strings.Contains(be.job.ScratchDir, "zops-bench-backup-") {
		defer os.RemoveAll(be.job.ScratchDir)
	}
	p := s3.NewListObjectsV2Paginator(be.s3, &s3.ListObjectsV2Input{Bucket: aws.String(be.bucket), Prefix: aws.String(be.prefix + "-")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return
		}
		var ids []s3types.ObjectIdentifier
		for _, o := range page.Contents {
			ids = append(ids, s3types.ObjectIdentifier{Key: o.Key})
		}
		if len(ids) > 0 {
			_, _ = be.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(be.bucket), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		}
	}
}
