package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/shtetl/zmanim-ops/internal/migrate/checksum"
	"github.com/shtetl/zmanim-ops/internal/restic"
)

// A dump's checksum manifest (per-table row counts and content sums, read in the dump's own
// exported snapshot) is stored as its own small restic snapshot next to the dump: tags
// zops, dump, pgsums, db:<name>, one file <db>.sums.json naming the dump snapshot it belongs
// to. It carries the dump tag so retention (forget --keep-daily, grouped by host and tags)
// keeps one manifest per kept day, exactly like the dumps; the dump's id lives in the file,
// not in a tag, because a per-dump tag would make every manifest its own group that
// retention never thins.

// ErrNoManifest reports a dump snapshot without a checksum manifest (taken by an older
// version of the job, or its manifest failed to store).
var ErrNoManifest = errors.New("no checksum manifest for this dump")

// manifestFilename is the file's name inside the manifest snapshot.
func (j *Job) manifestFilename() string { return j.PG.Database + ".sums.json" }

func (j *Job) manifestTags() []string {
	return []string{TagZops, TagDump, TagSums, "db:" + j.PG.Database}
}

// storeManifest saves m, tied to the dump snapshot dumpID.
func (j *Job) storeManifest(ctx context.Context, dumpID string, m checksum.Manifest) error {
	m.DumpSnapshot = dumpID
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode checksum manifest: %w", err)
	}
	dir, err := os.MkdirTemp(j.ScratchDir, "sums-")
	if err != nil {
		return fmt.Errorf("checksum manifest: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, j.manifestFilename())
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("checksum manifest: %w", err)
	}
	sum, err := j.Repo.Backup(ctx, restic.BackupOptions{
		Tags:          j.manifestTags(),
		Host:          j.Host,
		Command:       []string{"cat", path},
		StdinFilename: j.manifestFilename(),
	})
	if err != nil {
		return fmt.Errorf("store the checksum manifest of dump %s (the dump itself is saved): %w", short(dumpID), err)
	}
	var rows int64
	for _, t := range m.Tables {
		rows += t.Rows
	}
	j.logf("pg checksum manifest %s: %d tables, %d rows, read in snapshot %s", short(sum.SnapshotID), len(m.Tables), rows, m.Snapshot)
	return nil
}

// findManifest returns the manifest of dump snapshot dumpID. It reads the newest manifests
// first; the one of the newest dump is normally the newest manifest.
func (j *Job) findManifest(ctx context.Context, dumpID string) (checksum.Manifest, error) {
	snaps, err := j.Repo.Snapshots(ctx, restic.Filter{Tags: j.manifestTags(), Host: j.Host})
	if err != nil {
		return checksum.Manifest{}, fmt.Errorf("list checksum manifests: %w", err)
	}
	sort.Slice(snaps, func(a, b int) bool { return snaps[a].Time.After(snaps[b].Time) })
	const maxRead = 5 // a manifest is written seconds after its dump; older ones cannot match
	for i, s := range snaps {
		if i == maxRead {
			break
		}
		var buf bytes.Buffer
		if err := j.Repo.Dump(ctx, s.ID, "/"+j.manifestFilename(), &buf); err != nil {
			return checksum.Manifest{}, fmt.Errorf("read checksum manifest %s: %w", s.ShortID, err)
		}
		var m checksum.Manifest
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			return checksum.Manifest{}, fmt.Errorf("read checksum manifest %s: %w", s.ShortID, err)
		}
		if m.DumpSnapshot == dumpID {
			return m, nil
		}
	}
	return checksum.Manifest{}, fmt.Errorf("%w %s", ErrNoManifest, short(dumpID))
}
