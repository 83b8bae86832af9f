package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

// ErrLiveData refuses recovering over a cluster that is not first boot's new one.
var ErrLiveData = errors.New("the box's cluster holds data")

// Units stops and starts the box's services (systemctl on the box).
type Units interface {
	Stop(ctx context.Context, units ...string) error
	Start(ctx context.Context, units ...string) error
}

// Systemctl runs systemctl on this machine.
type Systemctl struct{}

func (Systemctl) run(ctx context.Context, verb string, units []string) error {
	out, err := exec.CommandContext(ctx, "systemctl", append([]string{verb}, units...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s %s: %w: %s", verb, strings.Join(units, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Stop implements Units.
func (s Systemctl) Stop(ctx context.Context, units ...string) error { return s.run(ctx, "stop", units) }

// Start implements Units.
func (s Systemctl) Start(ctx context.Context, units ...string) error {
	return s.run(ctx, "start", units)
}

// RecoverResult is what Recover did.
type RecoverResult struct {
	Base, WAL string
	Seconds   float64
	Aside     string // where the replaced (empty) cluster was moved
}

// Recover is backup:recover, run on a new box whose data volume was lost: first boot has
// formatted the new blank volume and initialised an empty cluster; Recover restores the newest
// base backup and every WAL segment shipped after it (Restore with the latest target, into the
// scratch directory on the same volume), stops the box's services, puts the recovered cluster
// in place of the empty one (kept aside, never deleted), removes the scratch-only settings and
// starts the services again. It refuses a cluster older than RecoverMaxAge (live data, not
// first boot's) unless forced.
func (j *Job) Recover(ctx context.Context, pgdata string, u Units, force bool) (RecoverResult, error) {
	start := time.Now()
	var res RecoverResult
	if err := j.refuseLiveData(ctx, force); err != nil {
		return res, err
	}
	dir := filepath.Join(j.ScratchDir, "recover-"+time.Now().UTC().Format("20060102T150405Z"))
	p, err := j.Restore(ctx, time.Time{}, RestoreOptions{Dir: dir})
	if err != nil {
		return res, fmt.Errorf("recover: %w", err)
	}
	res.Base, res.WAL = p.Base, p.WAL
	if err := p.Stop(ctx); err != nil {
		return res, fmt.Errorf("recover: %w", err)
	}
	j.logf("recover: stopping %s to swap the cluster", strings.Join(recoverStop, " "))
	if err := u.Stop(ctx, recoverStop...); err != nil {
		return res, fmt.Errorf("recover: %w", err)
	}
	res.Aside = pgdata + ".empty-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(pgdata, res.Aside); err != nil {
		return res, fmt.Errorf("recover: move the empty cluster aside: %w", err)
	}
	if err := os.Rename(p.DataDir, pgdata); err != nil {
		_ = os.Rename(res.Aside, pgdata)
		return res, fmt.Errorf("recover: put the recovered cluster in place: %w", err)
	}
	if err := stripRestoreConf(filepath.Join(pgdata, "postgresql.auto.conf")); err != nil {
		return res, fmt.Errorf("recover: %w", err)
	}
	_ = os.Chmod(pgdata, 0o700)
	_ = os.RemoveAll(dir)
	j.logf("recover: recovered cluster (base %s, WAL %s) in %s; the empty one is kept in %s", short(p.Base), short(p.WAL), pgdata, res.Aside)
	if err := u.Start(ctx, boxspec.UnitTarget); err != nil {
		return res, fmt.Errorf("recover: start the box again: %w", err)
	}
	res.Seconds = time.Since(start).Seconds()
	j.logf("recover: %s started; recovered in %.1fs", boxspec.UnitTarget, res.Seconds)
	return res, nil
}

// recoverStop are the units stopped while the cluster is swapped (the API first).
var recoverStop = []string{boxspec.UnitAPISocket, boxspec.UnitAPI, boxspec.UnitPostgres}

// RecoverMaxAge is how young the box's cluster must be for Recover to replace it: first
// boot initialised it on the new blank volume minutes ago (the API has since created its
// schema and reference rows, so "empty" is no test). An older cluster is live data.
const RecoverMaxAge = 2 * time.Hour

// refuseLiveData fails when the live cluster was initialised more than RecoverMaxAge ago,
// unless force. The cluster's system identifier carries its initdb time in its upper 32 bits.
func (j *Job) refuseLiveData(ctx context.Context, force bool) error {
	v, err := j.queryOne(ctx, j.PG.WithDatabase("postgres"), "SELECT system_identifier FROM pg_control_system()")
	if err != nil {
		return fmt.Errorf("recover: read the cluster's identifier: %w", err)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return fmt.Errorf("recover: system identifier %q: %w", v, err)
	}
	born := time.Unix(int64(id>>32), 0)
	age := j.now().Sub(born)
	j.logf("recover: the box's cluster was initialised %s (%s ago)", born.UTC().Format(time.RFC3339), age.Round(time.Second))
	if age > RecoverMaxAge && !force {
		return fmt.Errorf("%w: %s was initialised %s ago, not by this box's first boot on a new volume; recover replaces it (keeping it aside): set ZOPS_FORCE=1 if that is what you want, or use backup:restore for a scratch copy",
			ErrLiveData, j.PG.Redacted(), age.Round(time.Minute))
	}
	return nil
}

// stripRestoreConf removes Restore's scratch settings (port, socket, archive off,
// restore_command) so the cluster runs with the box's own configuration again.
func stripRestoreConf(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	if i := strings.Index(s, RestoreConfMarker); i >= 0 {
		s = strings.TrimRight(s[:i], "\n") + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o600)
}

// RecoverTarget is backup:recover (zops-backup recover on the box).
func RecoverTarget(ctx context.Context, out io.Writer) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Deadline())
	defer cancel()
	j, _, err := load(ctx, out, o)
	if err != nil {
		return fmt.Errorf("backup:recover: %w", err)
	}
	j.Notifier = nil
	r := opts.New()
	force := r.Bool("ZOPS_FORCE", false)
	if err := r.Err(); err != nil {
		return err
	}
	res, err := j.Recover(ctx, boxspec.PGData, Systemctl{}, force)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "recover: base=%s wal=%s seconds=%.1f aside=%s\n", short(res.Base), short(res.WAL), res.Seconds, res.Aside)
	return nil
}
