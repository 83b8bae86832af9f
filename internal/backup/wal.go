package backup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/restic"
)

// Point-in-time recovery needs the live PostgreSQL to run with
//
//	wal_level = replica
//	archive_mode = on
//	archive_timeout = 60s
//	wal_keep_size = 512MB  (pg_basebackup -X fetch collects WAL at the end of a base backup)
//	archive_command = 'test ! -f <WALArchiveDir>/%f && cp %p <WALArchiveDir>/%f.tmp && mv <WALArchiveDir>/%f.tmp <WALArchiveDir>/%f'
//
// (the copy-then-rename keeps a half-copied segment out of a shipment; ShipWAL skips *.tmp).
// A plain `cp` works too, at the risk that the newest segment of a shipment is incomplete, which
// only shortens how far that shipment can replay until the next one.
//
// and a replication connection for the backup user (pg_hba "host replication ..."), used by
// pg_basebackup. The archive directory keeps every segment since the last base backup, so
// every WAL snapshot (a restic backup of the whole directory, deduplicated) holds all the WAL
// needed to replay from that base; BaseBackup trims it with pg_archivecleanup once the new
// base and the WAL up to it are safely in the repository.

// ShipWAL is backup:wal: store the WAL archive directory in the repository. Nothing new since
// the last shipment saves no snapshot (--skip-if-unchanged).
func (j *Job) ShipWAL(ctx context.Context) (restic.BackupSummary, error) {
	if j.WALArchiveDir == "" {
		return restic.BackupSummary{}, fmt.Errorf("ship WAL: no WAL archive directory configured (ZOPS_BACKUP_WAL_DIR)")
	}
	entries, err := os.ReadDir(j.WALArchiveDir)
	if err != nil {
		return restic.BackupSummary{}, fmt.Errorf("ship WAL: read %s: %w (is archive_mode on and archive_command copying there?)", j.WALArchiveDir, err)
	}
	if _, err := j.Repo.EnsureInit(ctx); err != nil {
		return restic.BackupSummary{}, fmt.Errorf("ship WAL: open repository %s: %w", j.Repo, err)
	}
	abs, _ := filepath.Abs(j.WALArchiveDir)
	sum, err := j.Repo.Backup(ctx, restic.BackupOptions{
		Tags:  []string{TagZops, TagWAL},
		Host:  j.Host,
		Paths: []string{abs},
		// Segments still being copied in, and hidden files of the archive itself. The hidden-file
		// pattern is anchored to the archive: a bare ".*" would exclude every path under a
		// dot-directory such as the twin's .state.
		Excludes:        []string{"*.tmp", filepath.Join(abs, ".*")},
		SkipIfUnchanged: true,
	})
	if err != nil {
		return sum, fmt.Errorf("ship WAL from %s: %w", abs, err)
	}
	if sum.SnapshotID == "" {
		j.logf("wal: nothing new in %s (%d files)", abs, len(entries))
	} else {
		j.logf("wal: snapshot %s, %d files, %d bytes added", short(sum.SnapshotID), sum.TotalFilesProcessed, sum.DataAdded)
	}
	return sum, nil
}

// BaseBackup stores `pg_basebackup -Ft -X fetch` (one tar on standard output, WAL included)
// through --stdin-from-command, ships the WAL archive, then removes archived segments older
// than the new base.
func (j *Job) BaseBackup(ctx context.Context) (restic.BackupSummary, error) {
	prog, err := pgtool.FindProgram(ctx, "pg_basebackup", 0)
	if err != nil {
		return restic.BackupSummary{}, err
	}
	if err := os.MkdirAll(j.ScratchDir, 0o711); err != nil {
		return restic.BackupSummary{}, fmt.Errorf("scratch dir: %w", err)
	}
	if _, err := j.Repo.EnsureInit(ctx); err != nil {
		return restic.BackupSummary{}, fmt.Errorf("base backup: open repository %s: %w", j.Repo, err)
	}
	env, cleanup, err := j.pgEnv(j.PG)
	defer cleanup()
	if err != nil {
		return restic.BackupSummary{}, err
	}
	j.logf("base: pg_basebackup -Ft -X fetch %s -> restic", j.PG.Redacted())
	sum, err := j.Repo.Backup(ctx, restic.BackupOptions{
		Tags:          []string{TagZops, TagBase},
		Host:          j.Host,
		Command:       []string{prog.Path, "--pgdata=-", "--format=tar", "--wal-method=fetch", "--checkpoint=fast", "--no-password", "--label=zops-base"},
		StdinFilename: "base.tar",
		CommandEnv:    env,
	})
	if err != nil {
		return sum, fmt.Errorf("base backup of %s (no snapshot was saved): %w", j.PG.Redacted(), err)
	}
	if sum.TotalBytesProcessed < j.MinDumpBytes {
		_, _ = j.Repo.Forget(ctx, restic.ForgetOptions{IDs: []string{sum.SnapshotID}})
		return sum, fmt.Errorf("%w: base backup produced %d bytes; snapshot removed", ErrDumpTooSmall, sum.TotalBytesProcessed)
	}
	j.logf("base: snapshot %s, %d bytes", short(sum.SnapshotID), sum.TotalBytesProcessed)
	if j.WALArchiveDir == "" {
		return sum, nil
	}
	if _, err := j.ShipWAL(ctx); err != nil {
		return sum, err
	}
	if err := j.trimArchive(ctx); err != nil {
		return sum, err
	}
	for _, tag := range []string{TagWAL, TagBase} {
		_, err = j.Repo.Forget(ctx, restic.ForgetOptions{
			KeepWithin: time.Duration(j.KeepDaily+1) * 24 * time.Hour,
			KeepLast:   2,
			Filter:     restic.Filter{Tags: []string{TagZops, tag}, Host: j.Host},
			GroupBy:    "host,tags",
		})
		if err != nil {
			return sum, fmt.Errorf("retention of %s snapshots: %w", tag, err)
		}
	}
	return sum, nil
}

// trimArchive runs pg_archivecleanup up to the newest backup history file.
func (j *Job) trimArchive(ctx context.Context) error {
	hist, _ := filepath.Glob(filepath.Join(j.WALArchiveDir, "*.backup"))
	if len(hist) == 0 {
		return nil
	}
	sort.Strings(hist)
	prog, err := pgtool.FindProgram(ctx, "pg_archivecleanup", 0)
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, prog.Path, j.WALArchiveDir, filepath.Base(hist[len(hist)-1])).CombinedOutput()
	if err != nil {
		return fmt.Errorf("trim WAL archive %s: %w: %s", j.WALArchiveDir, err, strings.TrimSpace(string(out)))
	}
	for _, h := range hist[:len(hist)-1] {
		_ = os.Remove(h)
	}
	return nil
}
