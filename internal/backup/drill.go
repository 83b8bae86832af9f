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

// ErrDrillMismatch reports a restored database that differs from its source.
var ErrDrillMismatch = errors.New("restored database differs from the live database")

// DrillResult is the outcome of backup:drill; Seconds is the measured RTO for data.
type DrillResult struct {
	Snapshot     string
	SnapshotTime time.Time
	ScratchDB    string
	RestoreSecs  float64 // restic dump | pg_restore
	VerifySecs   float64
	Seconds      float64 // whole drill
	Report       checksum.Report
}

// DrillOptions tune a drill.
type DrillOptions struct {
	// ScratchDB is the database restored into (dropped first, and afterwards unless Keep).
	ScratchDB string
	Keep      bool
	// Jobs is the number of pg_restore jobs; >1 first copies the dump to ScratchDir.
	Jobs int
}

// Drill is backup:drill: restore the newest PostgreSQL dump into a scratch database on the
// same server, then prove with the migrate checksum code that every table's row count and
// content equal the live database's. Run it when nothing writes to the compared tables, or
// expect the rows written since the snapshot to show as differences.
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
	j.logf("drill: restored in %.1fs; comparing with the live database", res.RestoreSecs)

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
