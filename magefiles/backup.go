package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/shtetl/zmanim-ops/internal/backup"
)

// Backup runs the restic jobs: daily dumps, repository checks, restore drills, WAL shipping and
// point-in-time restore. The repository is the backups bucket (twin: versitygw; prod: S3), its
// password the SSM SecureString <ssm_prefix>/restic-password, never printed. A failed job
// mails notify.to through SES with the job, host, error and last log lines.
//
// Options: see `go tool mage -h backup:run`.
type Backup mg.Namespace

// Run dumps PostgreSQL (pg_dump custom format through restic --stdin-from-command) and Redis (RDB) into the repository, then applies retention.
//
// pg_dump runs with --compress=0 and restic compresses (zstd; faster than gzip, and unchanged
// tables deduplicate from day to day). A failing pg_dump makes restic fail and save nothing; a dump below backup.min_dump_bytes is
// removed again (restic forget <id>) and fails the job. Snapshots are tagged zops,dump,pg,db:<db>
// (and zops,dump,redis) with --host; retention is forget --keep-daily <backup.keep_daily> --prune.
// A second run on the same host is refused; one on another host waits for restic's lock.
//
// Options (environment; shared by every backup:* target):
//
//	ZOPS_ENV                  environment (default local = the twin)
//	ZOPS_BACKUP_PG_URL        live database (twin: postgres@<twin>/zmanim; prod: local socket)
//	ZOPS_BACKUP_REDIS_ADDR    Redis host:port, "none" to skip (twin 127.0.0.1:17379)
//	ZOPS_BACKUP_HOST          restic --host of the snapshots (default zmanim-<env>)
//	ZOPS_BACKUP_WAL_DIR       WAL archive (twin <state>/pg/wal-archive, prod /data/wal-archive)
//	ZOPS_BACKUP_SCRATCH       scratch space (twin <state>/backup, prod /data/zops-scratch)
//	ZOPS_BACKUP_REPOSITORY    restic repository URL (default s3:<S3>/<backups bucket>/restic)
//	ZOPS_BACKUP_RETRY_LOCK    wait this long for another host's restic lock (default 30m)
//	ZOPS_BACKUP_TIMEOUT       job deadline (default 2h); restic is interrupted cleanly
//	ZOPS_BACKUP_PG_COMPRESS   pg_dump --compress (default 0; -1 = pg_dump's default)
//	ZOPS_BACKUP_NOTIFY=0      do not mail failures (the systemd units use onfailure)
//	ZOPS_RESTIC               restic binary (default: the pinned v0.17.3 build)
func (Backup) Run(ctx context.Context) error { return backup.RunTarget(ctx, os.Stdout) }

// Verify runs restic check --read-data-subset n/7, n = weekday (Sunday 1), so seven daily runs read every pack.
//
// Options: as for backup:run (go tool mage -h backup:run).
func (Backup) Verify(ctx context.Context) error { return backup.VerifyTarget(ctx, os.Stdout) }

// Drill restores the newest dump into a scratch database and proves its row counts and content checksums equal those taken at dump time; prints the duration (RTO for data).
//
// backup:run hashes every table in the exported snapshot pg_dump reads and stores the sums
// beside the dump (tag pgsums), so the drill is exact while the live database keeps taking
// writes. A dump without such a manifest (older job) is compared with the live database.
// The scratch database <db>_drill on the same server is dropped first and afterwards
// (ZOPS_BACKUP_KEEP_DRILL=1 keeps it).
// Other options: as for backup:run.
func (Backup) Drill(ctx context.Context) error { return backup.DrillTarget(ctx, os.Stdout) }

// Wal ships the WAL archive to the repository now (the box does it every backup.wal_interval).
//
// Options: as for backup:run (go tool mage -h backup:run).
func (Backup) Wal(ctx context.Context) error { return backup.WALTarget(ctx, os.Stdout) }

// Base takes a base backup (pg_basebackup -Ft -X fetch through restic), ships WAL, and trims the archive.
//
// Options: as for backup:run (go tool mage -h backup:run).
func (Backup) Base(ctx context.Context) error { return backup.BaseTarget(ctx, os.Stdout) }

// Restore restores base backup + WAL to TIME into a scratch data directory and starts it on a free loopback port for inspection.
//
// TIME is RFC 3339 (2026-11-27T10:15:00Z), "2026-11-27 10:15:00" (UTC) or a duration ago (15m).
// The live database is not touched. Prints the connection URL (password hidden) and the stop
// command. ZOPS_BACKUP_RESTORE_DIR picks the scratch directory (must be empty); other options
// as for backup:run.
func (Backup) Restore(ctx context.Context, time string) error {
	return backup.RestoreTarget(ctx, os.Stdout, time)
}

// Units writes the box's systemd units and timers (deploy/systemd/backup) from the prod configuration and verifies them with systemd-analyze.
//
// Daily backup at backup.schedule, verify at backup.verify_schedule, base backup weekly on
// backup.base_backup_day, WAL shipping every backup.wal_interval; every job has
// OnFailure=zops-backup-notify@%n.service. ZOPS_BACKUP_UNITS_DIR writes elsewhere;
// ZOPS_BACKUP_UNITS_ENV renders another environment.
func (Backup) Units(ctx context.Context) error {
	return backup.UnitsTarget(ctx, os.Stdout)
}

// Undelete brings back backup objects deleted since TIME ("all" for every deleted one) from the versioned backups bucket, with your (operator) credentials.
//
// The recovery after a compromised box deleted the restic repository: the box may delete
// objects (restic prunes) but not their versions, which the bucket keeps 35 days. TIME is as
// for backup:restore; restic lock files are never restored. ZOPS_DRY_RUN=1 lists what would
// come back. Run backup:verify afterwards.
func (Backup) Undelete(ctx context.Context, time string) error {
	return backup.UndeleteTarget(ctx, os.Stdout, time)
}
