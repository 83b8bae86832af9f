package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shtetl/zmanim-ops/internal/migrate/checksum"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/restic"
)

// ErrDrillMismatch reports a restored database that differs from what was dumped.
var ErrDrillMismatch = errors.New("restored database differs from its source")

// What a drill compared the restore with.
const (
	AgainstManifest = "manifest" // the checksums taken in the dump's own snapshot
	AgainstLive     = "live"     // the live database (dumps without a manifest)
)

// DrillResult is the outcome of backup:drill; Seconds is the measured RTO for data.
type DrillResult struct {
	Snapshot     string
	SnapshotTime time.Time
	ScratchDB    string
	RestoreSecs  float64 // restic dump | pg_restore
	VerifySecs   float64
	Seconds      float64 // whole drill
	// Against says which comparison ran. With AgainstManifest, Restored holds the restore's
	// sums and Diffs the tables that differ from the manifest; with AgainstLive, Report holds
	// the full comparison with the live database.
	Against  string
	Restored checksum.Manifest
	Diffs    []checksum.ManifestDiff
	Report   checksum.Report
}

// Identical reports whether the restore matched what it was compared with.
func (r DrillResult) Identical() bool {
	if r.Against == AgainstManifest {
		return len(r.Diffs) == 0
	}
	return r.Report.Identical
}

// Tables is the number of tables compared.
func (r DrillResult) Tables() int {
	if r.Against == AgainstManifest {
		return len(r.Restored.Tables)
	}
	return len(r.Report.Tables)
}

// RestoredRows is the restored row count of table (as "schema.table" or a bare name in
// public), -1 when the drill did not see it.
func (r DrillResult) RestoredRows(table string) int64 {
	match := func(name string) bool { return name == table || name == "public."+table }
	for _, t := range r.Restored.Tables {
		if match(t.Table) {
			return t.Rows
		}
	}
	for _, t := range r.Report.Tables {
		if match(t.Table) {
			return t.TargetRows
		}
	}
	return -1
}

// DrillOptions tune a drill.
type DrillOptions struct {
	// ScratchDB is the database restored into (dropped first, and afterwards unless Keep).
	ScratchDB string
	Keep      bool
	// Jobs is the number of pg_restore jobs; >1 first copies the dump to ScratchDir.
	Jobs int

	// afterRestore runs between the restore and the comparison (tests change the restore).
	afterRestore func(ctx context.Context, scratch pgtool.Conn) error
}

// Drill is backup:drill: restore the newest PostgreSQL dump into a scratch database on the
// same server, then prove with the migrate checksum code that every table's row count and
// content equal the checksum manifest taken in the dump's own snapshot, so rows written to
// the live database since the dump do not count. A dump without a manifest (taken before
// manifests existed) is compared with the live database instead, which is exact only while
// nothing writes.
func (j *Job) Drill(ctx context.Context, o DrillOptions) (DrillResult, error) {
	start := time.Now()
	var res DrillResult
	if o.ScratchDB == "" {
		o.ScratchDB = j.PG.Database + "_drill"
	}
	if o.ScratchDB == j.PG.Database {
		return res, fmt.Errorf("drill: scratch database %q is the live database; choose another name", o.ScratchDB)
	}
	res.ScratchDB = o.ScratchDB
	snap, err := j.Repo.Latest(ctx, restic.Filter{Tags: []string{TagZops, TagPG, "db:" + j.PG.Database}, Host: j.Host})
	if err != nil {
		return res, fmt.Errorf("drill: find the latest dump of %s: %w", j.PG.Database, err)
	}
	res.Snapshot, res.SnapshotTime = snap.ID, snap.Time
	j.logf("drill: snapshot %s of %s (%s) -> scratch database %s", snap.ShortID, j.PG.Database, snap.Time.UTC().Format(time.RFC3339), o.ScratchDB)

	scratch := j.PG.WithDatabase(o.ScratchDB)
	if err := recreateDB(ctx, j.PG, o.ScratchDB); err != nil {
		return res, err
	}
	if !o.Keep {
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := dropDB(dctx, j.PG, o.ScratchDB); err != nil {
				j.logf("drill: could not drop %s: %v", o.ScratchDB, err)
			}
		}()
	}
	rs := time.Now()
	if err := j.restoreDump(ctx, snap.ID, scratch); err != nil {
		return res, err
	}
	res.RestoreSecs = time.Since(rs).Seconds()
	if o.afterRestore != nil {
		if err := o.afterRestore(ctx, scratch); err != nil {
			return res, err
		}
	}
	man, merr := j.findManifest(ctx, snap.ID)
	if merr != nil && !errors.Is(merr, ErrNoManifest) {
		return res, fmt.Errorf("drill: %w", merr)
	}
	if merr == nil {
		return j.drillAgainstManifest(ctx, res, start, scratch, man, snap)
	}
	j.logf("drill: restored in %.1fs; snapshot %s has no checksum manifest (an older dump), so the restore is compared with the live database: rows written since the dump count as differences", res.RestoreSecs, snap.ShortID)
	res.Against = AgainstLive
	vs := time.Now()
	rep, err := checksum.Verify(ctx, j.PG.URL(), scratch.URL(), checksum.Options{Parallel: 2})
	res.VerifySecs = time.Since(vs).Seconds()
	res.Report = rep
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		return res, fmt.Errorf("drill: compare restored database: %w", err)
	}
	for _, t := range rep.Tables {
		j.logf("drill: %-40s live %10d rows, restored %10d rows, %s", t.Table, t.SourceRows, t.TargetRows, verdict(t))
	}
	if !rep.Identical {
		var b strings.Builder
		_ = rep.WriteText(&b)
		j.logf("%s", b.String())
		return res, fmt.Errorf("drill: %w (snapshot %s taken %s; rows written since then also count)", ErrDrillMismatch, snap.ShortID, snap.Time.UTC().Format(time.RFC3339))
	}
	j.logf("drill: OK, %d tables identical (counts and content checksums); restore %.1fs, verify %.1fs, total %.1fs",
		len(rep.Tables), res.RestoreSecs, res.VerifySecs, res.Seconds)
	return res, nil
}

// drillAgainstManifest hashes the restore over the manifest's columns and compares table by
// table with the sums taken in the dump's snapshot: exact however busy the live database is.
func (j *Job) drillAgainstManifest(ctx context.Context, res DrillResult, start time.Time, scratch pgtool.Conn, man checksum.Manifest, snap restic.Snapshot) (DrillResult, error) {
	res.Against = AgainstManifest
	j.logf("drill: restored in %.1fs; comparing with the checksums taken in the dump's snapshot %s", res.RestoreSecs, man.Snapshot)
	vs := time.Now()
	got, err := checksum.SumDatabase(ctx, scratch.URL(), 2, &man)
	res.VerifySecs = time.Since(vs).Seconds()
	res.Seconds = time.Since(start).Seconds()
	res.Restored = got
	if err != nil {
		return res, fmt.Errorf("drill: checksum the restored database: %w", err)
	}
	res.Diffs = man.Compare(got)
	bad := map[string]checksum.ManifestDiff{}
	for _, d := range res.Diffs {
		bad[d.Table] = d
	}
	for _, t := range man.Tables {
		state := "checksums equal"
		if d, ok := bad[t.Table]; ok {
			state = "DIFFERENT: " + d.Problem
		}
		j.logf("drill: %-40s dumped %10d rows, restored %10d rows, %s", t.Table, t.Rows, res.RestoredRows(t.Table), state)
	}
	if len(res.Diffs) > 0 {
		var names []string
		for _, d := range res.Diffs {
			names = append(names, fmt.Sprintf("%s (%s: dumped %d rows, restored %d)", d.Table, d.Problem, d.WantRows, d.GotRows))
		}
		return res, fmt.Errorf("drill: %w: snapshot %s: %s", ErrDrillMismatch, snap.ShortID, strings.Join(names, "; "))
	}
	j.logf("drill: OK, %d tables identical to the dump-time checksums (counts and content); restore %.1fs, verify %.1fs, total %.1fs",
		len(man.Tables), res.RestoreSecs, res.VerifySecs, res.Seconds)
	return res, nil
}

func verdict(t *checksum.TableReport) string {
	if t.Identical() {
		return "checksums equal"
	}
	return fmt.Sprintf("DIFFERENT (missing %d, extra %d, changed %d)", t.MissingCount, t.ExtraCount, t.ChangedCount)
}

// restoreDump streams `restic dump <id> <db>.dump` into pg_restore.
func (j *Job) restoreDump(ctx context.Context, id string, target pgtool.Conn) error {
	prog, err := pgtool.FindProgram(ctx, "pg_restore", 0)
	if err != nil {
		return err
	}
	env, cleanup, err := target.Env(j.ScratchDir)
	defer cleanup()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	cmd := exec.CommandContext(ctx, prog.Path, "--no-password", "--exit-on-error", "--no-owner", "--dbname="+target.Database)
	cmd.Env = env
	cmd.Stdin = pr
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("drill: start pg_restore: %w", err)
	}
	dumpErr := make(chan error, 1)
	go func() {
		err := j.Repo.Dump(ctx, id, "/"+j.DumpFilename(), pw)
		pw.CloseWithError(err)
		dumpErr <- err
	}()
	werr := cmd.Wait()
	pr.Close()
	cancel()
	derr := <-dumpErr
	if werr != nil {
		return fmt.Errorf("drill: pg_restore into %s: %w: %s", target.Redacted(), werr, strings.TrimSpace(stderr.String()))
	}
	if derr != nil {
		return fmt.Errorf("drill: restic dump %s: %w", short(id), derr)
	}
	return nil
}

func adminConn(ctx context.Context, live pgtool.Conn) (*pgx.Conn, error) {
	c, err := pgx.Connect(ctx, live.WithDatabase("postgres").URL())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", live.WithDatabase("postgres").Redacted(), err)
	}
	return c, nil
}

func recreateDB(ctx context.Context, live pgtool.Conn, name string) error {
	if err := dropDB(ctx, live, name); err != nil {
		return err
	}
	c, err := adminConn(ctx, live)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		return fmt.Errorf("create scratch database %s: %w", name, err)
	}
	return nil
}

func dropDB(ctx context.Context, live pgtool.Conn, name string) error {
	c, err := adminConn(ctx, live)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop scratch database %s: %w", name, err)
	}
	return nil
}
