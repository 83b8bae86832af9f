// Package backup runs the restic jobs of the box: the daily PostgreSQL and Redis backup, the
// weekly repository check, the restore drill, continuous WAL shipping with periodic base
// backups, point-in-time restore, failure notification, and the systemd units that schedule it all.
//
// A backup cannot fake success: pg_dump runs under `restic backup --stdin-from-command`, so a
// failing pg_dump makes restic fail and save nothing; a dump smaller than MinDumpBytes is
// treated as a failure too (restic has already stored it by the time its size is known, so the
// job removes that snapshot with `restic forget <id>` and fails). Every failure can be mailed
// through SES with the job, host, error and the last log lines.
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/migrate/checksum"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/restic"
)

// Tags put on snapshots. Retention and restores select by them, so they are part of the format.
const (
	TagZops  = "zops"
	TagDump  = "dump"   // daily logical dumps (pg_dump, Redis RDB): kept by --keep-daily
	TagPG    = "pg"     // PostgreSQL custom-format dump
	TagRedis = "redis"  // Redis RDB
	TagWAL   = "wal"    // archived WAL directory
	TagBase  = "base"   // pg_basebackup tar
	TagSums  = "pgsums" // checksum manifest of a PostgreSQL dump (manifest.go)
)

// ErrDumpTooSmall reports a dump below the configured minimum size.
var ErrDumpTooSmall = errors.New("dump is suspiciously small")

// Job is everything the backup jobs need; build it with FromConfig or by hand in tests.
type Job struct {
	Repo *restic.Repo
	// PG is the live database (host, port, user, password, database).
	PG pgtool.Conn
	// RedisAddr is host:port of Redis; empty skips the Redis backup. RedisPassword is passed as
	// REDISCLI_AUTH, never on the command line.
	RedisAddr     string
	RedisPassword string
	// Host is the restic --host of every snapshot (the box's name).
	Host string
	// KeepDaily is the retention of daily dumps (restic forget --keep-daily).
	KeepDaily int
	// MinDumpBytes: a smaller pg_dump output fails the job and leaves no snapshot.
	MinDumpBytes int64
	// DumpCompress is pg_dump's --compress level. The default 0 leaves compression to restic
	// (zstd, faster than pg_dump's gzip), and uncompressed dumps deduplicate from day to day:
	// unchanged tables cost nothing. -1 keeps pg_dump's own default.
	DumpCompress int
	// WALArchiveDir is where PostgreSQL's archive_command copies WAL segments.
	WALArchiveDir string
	// ScratchDir holds restores (drill dumps, point-in-time data directories).
	ScratchDir string
	// Notifier is told about failures; nil only logs them.
	Notifier Notifier
	// Log receives progress lines; the last lines also go into failure emails.
	Log io.Writer
	// Now is the clock (tests pin it).
	Now func() time.Time
	// Metrics receives BackupSucceeded=1 (dimension Env) after each good backup run; nil puts
	// nothing (tests).
	Metrics MetricsAPI
	Env     string
}

func (j *Job) logf(format string, args ...any) {
	if j.Log != nil {
		fmt.Fprintf(j.Log, format+"\n", args...)
	}
}

func (j *Job) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

// DumpFilename is the name the PostgreSQL dump has inside its snapshot.
func (j *Job) DumpFilename() string { return j.PG.Database + ".dump" }

// RunResult describes one successful backup:run.
type RunResult struct {
	PGSnapshot    string
	PGBytes       int64
	RedisSnapshot string
	RedisBytes    int64
	Forgotten     int
	Seconds       float64
}

// Run is backup:run: dump PostgreSQL and Redis into the repository, then apply retention.
func (j *Job) Run(ctx context.Context) (RunResult, error) {
	start := time.Now()
	var res RunResult
	created, err := j.Repo.EnsureInit(ctx)
	if err != nil {
		return res, fmt.Errorf("open repository %s: %w", j.Repo, err)
	}
	if created {
		j.logf("initialised restic repository %s", j.Repo)
	}
	sum, err := j.BackupPG(ctx)
	if err != nil {
		return res, err
	}
	res.PGSnapshot, res.PGBytes = sum.SnapshotID, sum.TotalBytesProcessed
	if j.RedisAddr != "" {
		rs, err := j.BackupRedis(ctx)
		if err != nil {
			return res, err
		}
		res.RedisSnapshot, res.RedisBytes = rs.SnapshotID, rs.TotalBytesProcessed
	}
	n, err := j.Retain(ctx)
	if err != nil {
		return res, err
	}
	res.Forgotten = n
	res.Seconds = time.Since(start).Seconds()
	j.logf("backup done in %.1fs: pg %s (%d bytes), redis %s (%d bytes), %d old snapshots forgotten",
		res.Seconds, short(res.PGSnapshot), res.PGBytes, short(res.RedisSnapshot), res.RedisBytes, n)
	return res, j.putSucceeded(ctx)
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// pgEnv returns the PG* variables (and PGPASSFILE) for client programs run by restic.
func (j *Job) pgEnv(conn pgtool.Conn) ([]string, func(), error) {
	full, cleanup, err := conn.Env(j.ScratchDir)
	if err != nil {
		return nil, cleanup, err
	}
	var env []string
	for _, kv := range full {
		if strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env, cleanup, nil
}

// BackupPG stores a custom-format pg_dump through --stdin-from-command, and beside it the
// dump's checksum manifest (see manifest.go): pg_dump reads an exported snapshot that this
// job holds open while it hashes every table in that same snapshot, so the manifest describes
// exactly the rows in the dump however busy the database is.
func (j *Job) BackupPG(ctx context.Context) (restic.BackupSummary, error) {
	prog, err := pgtool.FindProgram(ctx, "pg_dump", 0)
	if err != nil {
		return restic.BackupSummary{}, err
	}
	if err := os.MkdirAll(j.ScratchDir, 0o711); err != nil {
		return restic.BackupSummary{}, fmt.Errorf("scratch dir: %w", err)
	}
	env, cleanup, err := j.pgEnv(j.PG)
	defer cleanup()
	if err != nil {
		return restic.BackupSummary{}, err
	}
	j.logf("pg_dump --format=custom --compress=%d %s -> restic %s, with a checksum manifest", j.DumpCompress, j.PG.Redacted(), j.Repo)
	held, err := checksum.HoldSnapshot(ctx, j.PG.URL(), 2)
	if err != nil {
		return restic.BackupSummary{}, fmt.Errorf("back up PostgreSQL %s: hold a snapshot for the dump and its checksums (no snapshot was saved): %w", j.PG.Redacted(), err)
	}
	defer held.Close()
	type sumsResult struct {
		m   checksum.Manifest
		err error
	}
	sumsDone := make(chan sumsResult, 1)
	go func() {
		m, err := held.Sums(ctx)
		sumsDone <- sumsResult{m, err}
	}()
	j.logf("pg_dump reads exported snapshot %s; its tables are hashed in the same snapshot", held.ID)
	sum, err := j.Repo.Backup(ctx, restic.BackupOptions{
		Tags:          []string{TagZops, TagDump, TagPG, "db:" + j.PG.Database},
		Host:          j.Host,
		Command:       j.dumpCommand(prog.Path, held.ID),
		StdinFilename: j.DumpFilename(),
		CommandEnv:    env,
	})
	sums := <-sumsDone
	held.Close() // the snapshot is no longer needed once pg_dump and the sums are done
	if err != nil {
		return sum, fmt.Errorf("back up PostgreSQL %s (no snapshot was saved): %w", j.PG.Redacted(), err)
	}
	if sum.TotalBytesProcessed < j.MinDumpBytes {
		// restic stored the snapshot before its size was known: remove it so a restore can
		// never pick a truncated or empty dump, then fail.
		if _, ferr := j.Repo.Forget(ctx, restic.ForgetOptions{IDs: []string{sum.SnapshotID}}); ferr != nil {
			return sum, fmt.Errorf("%w: %d bytes < %d, and removing snapshot %s failed: %w", ErrDumpTooSmall, sum.TotalBytesProcessed, j.MinDumpBytes, short(sum.SnapshotID), ferr)
		}
		return sum, fmt.Errorf("%w: pg_dump of %s produced %d bytes, below backup.min_dump_bytes=%d; snapshot %s was removed (is the database empty or the wrong one?)",
			ErrDumpTooSmall, j.PG.Redacted(), sum.TotalBytesProcessed, j.MinDumpBytes, short(sum.SnapshotID))
	}
	j.logf("pg snapshot %s: %d bytes dumped, %d added", short(sum.SnapshotID), sum.TotalBytesProcessed, sum.DataAdded)
	if sums.err != nil {
		return sum, fmt.Errorf("back up PostgreSQL %s: dump snapshot %s was saved, but its checksums failed (a drill of it can only compare with the live database): %w", j.PG.Redacted(), short(sum.SnapshotID), sums.err)
	}
	if err := j.storeManifest(ctx, sum.SnapshotID, sums.m); err != nil {
		return sum, err
	}
	return sum, nil
}

func (j *Job) dumpCommand(pgDump, snapshot string) []string {
	cmd := []string{pgDump, "--format=custom", "--no-password", "--dbname=" + j.PG.Database}
	if snapshot != "" {
		cmd = append(cmd, "--snapshot="+snapshot)
	}
	if j.DumpCompress >= 0 {
		cmd = append(cmd, fmt.Sprintf("--compress=%d", j.DumpCompress))
	}
	return cmd
}

// BackupRedis fetches an RDB with redis-cli --rdb into a private temp file, then stores it.
func (j *Job) BackupRedis(ctx context.Context) (restic.BackupSummary, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return restic.BackupSummary{}, fmt.Errorf("back up Redis: redis-cli not found (install redis-tools): %w", err)
	}
	dir, err := os.MkdirTemp(j.ScratchDir, "redis-")
	if err != nil {
		return restic.BackupSummary{}, fmt.Errorf("back up Redis: %w", err)
	}
	defer os.RemoveAll(dir)
	rdb := filepath.Join(dir, "dump.rdb")
	host, port, ok := strings.Cut(j.RedisAddr, ":")
	if !ok {
		port = "6379"
	}
	cmd := exec.CommandContext(ctx, cli, "-h", host, "-p", port, "--no-auth-warning", "--rdb", rdb)
	cmd.Env = os.Environ()
	if j.RedisPassword != "" {
		cmd.Env = append(cmd.Env, "REDISCLI_AUTH="+j.RedisPassword)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return restic.BackupSummary{}, fmt.Errorf("back up Redis %s: redis-cli --rdb: %w: %s", j.RedisAddr, err, strings.TrimSpace(string(out)))
	}
	sum, err := j.Repo.Backup(ctx, restic.BackupOptions{
		Tags:          []string{TagZops, TagDump, TagRedis},
		Host:          j.Host,
		Command:       []string{"cat", rdb},
		StdinFilename: "redis.rdb",
	})
	if err != nil {
		return sum, fmt.Errorf("back up Redis %s: %w", j.RedisAddr, err)
	}
	j.logf("redis snapshot %s: %d bytes", short(sum.SnapshotID), sum.TotalBytesProcessed)
	return sum, nil
}

// Retain applies retention: daily dumps by --keep-daily, WAL and base backups by age (kept a
// day longer than the dumps so every kept day can be replayed), then prunes.
func (j *Job) Retain(ctx context.Context) (int, error) {
	groups, err := j.Repo.Forget(ctx, restic.ForgetOptions{
		KeepDaily: j.KeepDaily,
		Filter:    restic.Filter{Tags: []string{TagZops, TagDump}, Host: j.Host},
		GroupBy:   "host,tags",
		Prune:     true,
	})
	if err != nil {
		return 0, fmt.Errorf("apply retention (forget --keep-daily %d --prune): %w", j.KeepDaily, err)
	}
	n := 0
	for _, g := range groups {
		n += len(g.Remove)
	}
	return n, nil
}
