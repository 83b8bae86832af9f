package backup

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// The entry points of the mage targets and of the zops-backup binary on the box. Each loads
// the configuration, builds the Job, applies ZOPS_BACKUP_TIMEOUT, and reports failures by
// email (unless ZOPS_BACKUP_NOTIFY=onfailure, set by the systemd units whose OnFailure= unit
// mails instead, or ZOPS_BACKUP_NOTIFY=0).

func load(ctx context.Context, out io.Writer) (*Job, *config.Env, error) {
	env, err := config.Load()
	if err != nil {
		return nil, nil, err
	}
	j, err := FromConfig(ctx, env, out)
	if err != nil {
		return nil, env, err
	}
	switch os.Getenv("ZOPS_BACKUP_NOTIFY") {
	case "onfailure", "0", "off":
		j.Notifier = nil
	}
	return j, env, nil
}

func runJob(ctx context.Context, out io.Writer, name string, fn func(ctx context.Context, j *Job) error) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout())
	defer cancel()
	j, _, err := load(ctx, out)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return j.Do(ctx, name, func(ctx context.Context) error { return fn(ctx, j) })
}

// RunTarget is backup:run.
func RunTarget(ctx context.Context, out io.Writer) error {
	return runJob(ctx, out, "backup:run", func(ctx context.Context, j *Job) error {
		_, err := j.Run(ctx)
		return err
	})
}

// VerifyTarget is backup:verify.
func VerifyTarget(ctx context.Context, out io.Writer) error {
	return runJob(ctx, out, "backup:verify", func(ctx context.Context, j *Job) error { return j.Verify(ctx) })
}

// DrillTarget is backup:drill.
func DrillTarget(ctx context.Context, out io.Writer) error {
	return runJob(ctx, out, "backup:drill", func(ctx context.Context, j *Job) error {
		res, err := j.Drill(ctx, DrillOptions{Keep: os.Getenv("ZOPS_BACKUP_KEEP_DRILL") == "1"})
		if err == nil {
			fmt.Fprintf(out, "drill: snapshot=%s tables=%d identical=%v restore_s=%.1f verify_s=%.1f total_s=%.1f\n",
				short(res.Snapshot), len(res.Report.Tables), res.Report.Identical, res.RestoreSecs, res.VerifySecs, res.Seconds)
		}
		return err
	})
}

// WALTarget is backup:wal.
func WALTarget(ctx context.Context, out io.Writer) error {
	return runJob(ctx, out, "backup:wal", func(ctx context.Context, j *Job) error {
		_, err := j.ShipWAL(ctx)
		return err
	})
}

// BaseTarget is backup:base.
func BaseTarget(ctx context.Context, out io.Writer) error {
	return runJob(ctx, out, "backup:base", func(ctx context.Context, j *Job) error {
		_, err := j.BaseBackup(ctx)
		return err
	})
}

// ParseTarget reads a restore time: RFC 3339 ("2026-11-27T10:15:00Z"), "2026-11-27 10:15:00"
// (UTC), or a duration ago ("15m" or "-15m").
func ParseTarget(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.UTC); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("restore time %q: use RFC 3339 (2026-11-27T10:15:00Z), \"2026-11-27 10:15:00\" (UTC) or a duration ago (15m)", s)
}

// RestoreTarget is backup:restore TIME. It leaves the scratch server running and prints how
// to reach and stop it. It does not mail on failure: a person is watching.
func RestoreTarget(ctx context.Context, when string, out io.Writer) error {
	target, err := ParseTarget(when, time.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout())
	defer cancel()
	j, _, err := load(ctx, out)
	if err != nil {
		return fmt.Errorf("backup:restore: %w", err)
	}
	j.Notifier = nil
	p, err := j.Restore(ctx, target, RestoreOptions{Dir: os.Getenv("ZOPS_BACKUP_RESTORE_DIR")})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "restore: target=%s base=%s wal=%s seconds=%.1f\n  connect: psql %q\n  stop:    %s\n",
		p.Target.Format(time.RFC3339), short(p.Base), short(p.WAL), p.Seconds, p.Conn, p.StopHint)
	return nil
}

// UnitsTarget is backup:units: render the box's units from the configuration into dir
// (default deploy/systemd/backup), then verify them with systemd-analyze.
func UnitsTarget(ctx context.Context, dir string, out io.Writer) error {
	// The units describe the box: render the production environment (or ZOPS_BACKUP_UNITS_ENV).
	env, err := config.LoadWith(config.Options{Env: envOr("ZOPS_BACKUP_UNITS_ENV", "prod")})
	if err != nil {
		return err
	}
	if dir == "" {
		dir = filepath.Join(config.RepoRoot(), "deploy", "systemd", "backup")
	}
	c := UnitConfigFor(env)
	units, err := RenderUnits(c)
	if err != nil {
		return err
	}
	paths, err := WriteUnits(dir, units)
	if err != nil {
		return err
	}
	for _, p := range paths {
		fmt.Fprintf(out, "wrote %s\n", p)
	}
	if err := VerifyUnits(ctx, c); err != nil {
		return err
	}
	fmt.Fprintf(out, "units: %d files verified with systemd-analyze (env %s, backup %q, verify %q, base %q, WAL every %s)\n",
		len(paths), env.Name, c.BackupCalendar, c.VerifyCalendar, c.BaseCalendar, c.WALInterval)
	return nil
}

// unitJobs names the job each unit runs, for the failure email.
var unitJobs = map[string]string{
	"zops-backup":        "backup:run",
	"zops-backup-verify": "backup:verify",
	"zops-wal-ship":      "backup:wal",
	"zops-basebackup":    "backup:base",
}

// NotifyTarget mails the failure of a systemd unit with its last journal lines (run by
// zops-backup-notify@<unit>.service).
func NotifyTarget(ctx context.Context, unit string, out io.Writer) error {
	env, err := config.Load()
	if err != nil {
		return err
	}
	j, err := FromConfig(ctx, env, out)
	if err != nil {
		return err
	}
	lines, jerr := exec.CommandContext(ctx, "journalctl", "--unit", unit, "--lines", "30", "--no-pager", "--output", "short-iso").Output()
	msg := fmt.Errorf("systemd unit %s failed (see `journalctl -u %s`)", unit, unit)
	if jerr != nil {
		msg = fmt.Errorf("systemd unit %s failed (journal unreadable: %v)", unit, jerr)
	}
	job, ok := unitJobs[strings.TrimSuffix(unit, ".service")]
	if !ok {
		job = unit
	}
	f := Failure{Job: job, Host: j.Host, Err: msg,
		LogLines: strings.Split(strings.TrimSpace(string(lines)), "\n"), At: time.Now()}
	if err := j.Notifier.Notify(ctx, f); err != nil {
		return err
	}
	fmt.Fprintf(out, "notified %s about %s\n", env.Notify.To, unit)
	return nil
}
