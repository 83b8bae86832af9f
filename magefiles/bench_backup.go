package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/backup"
)

// Backup times backup:run's PostgreSQL step against a bare `pg_dump -Fc > /dev/null`, then runs a drill, on a 1M-row cities database.
//
// It creates zops_bench_backup (1M cities with PostGIS points, ~150 MB) on the configured
// PostgreSQL (ZOPS_TEST_PG_URL when set, else the twin's), then, interleaved ZOPS_BENCH_RUNS
// times: the bare pg_dump, and pg_dump through restic --stdin-from-command into a fresh
// repository on S3 (ZOPS_TEST_S3_* when set, else the twin's backups bucket). Then one
// backup:drill (restore + checksum comparison). Bench repositories are deleted afterwards.
// Last line: `backup: dump_s=A backup_s=B ratio=C drill_s=D` (medians).
// Goals: ratio <= 1.5, drill_s <= 60.
//
// Options (environment):
//
//	ZOPS_BENCH_ROWS          rows (default 1000000)
//	ZOPS_BENCH_RUNS          timed runs per side (default 2)
//	ZOPS_BENCH_KEEP=1        keep the bench database
//	ZOPS_BACKUP_PG_COMPRESS  pg_dump --compress for the backup side (default 0: restic compresses)
func (Bench) Backup(ctx context.Context) error {
	return backup.BenchTarget(ctx, os.Stdout)
}
