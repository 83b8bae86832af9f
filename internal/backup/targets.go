package backup

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

// The entry points of the mage targets and of the zops-backup binary on the box. Each loads
// the configuration, builds the Job, applies ZOPS_BACKUP_TIMEOUT, and reports failures by
// email (unless ZOPS_BACKUP_NOTIFY=onfailure, set by the systemd units whose OnFailure= unit
// mails instead, or ZOPS_BACKUP_NOTIFY=0).

// Options are everything the backup targets read from the environment.
type Options struct {
	Overrides
	// Notify: "" or on mails failures; onfailure (the systemd units, whose OnFailure= unit
	// mails instead) or off does not.
	Notify     string
	KeepDrill  bool   // ZOPS_BACKUP_KEEP_DRILL: keep the drill's scratch server
	RestoreDir string // ZOPS_BACKUP_RESTORE_DIR: where backup:restore puts its server
	UnitsDir   string // ZOPS_BACKUP_UNITS_DIR: where backup:units writes
	UnitsEnv   string // ZOPS_BACKUP_UNITS_ENV: the environment the units describe (default prod)
}

// ReadOptions reads the backup targets' ZOPS_* options.
func ReadOptions(r *opts.Reader) Options {
	o := Options{
		Overrides: Overrides{
			PGURL: r.String(EnvPGURL, ""), Redis: r.String(EnvRedis, ""), Host: r.String(EnvHost, ""),
			WALDir: r.String(EnvWALDir, ""), Scratch: r.String(EnvScratch, ""), Restic: r.String(EnvRestic, ""),
			Repository: r.String(EnvRepo, ""), RetryLock: r.Duration(EnvRetryLock, 0), Timeout: r.Duration(EnvTimeout, 0),
			CacheDirectory: r.String("CACHE_DIRECTORY", ""),
		},
		Notify:     r.String("ZOPS_BACKUP_NOTIFY", "on"),
		KeepDrill:  r.Bool("ZOPS_BACKUP_KEEP_DRILL", false),
		RestoreDir: r.String("ZOPS_BACKUP_RESTORE_DIR", ""),
		UnitsDir:   r.String("ZOPS_BACKUP_UNITS_DIR", ""),
		UnitsEnv:   r.String("ZOPS_BACKUP_UNITS_ENV", "prod"),
	}
	if r.Set(EnvCompress) {
		v := r.String(EnvCompress, "")
		if n := r.Int(EnvCompress, 0); n < -1 || n > 9 {
			r.Problem(EnvCompress, v, "want -1 (pg_dump default) or 0..9")
		} else {
			o.Compress = &n
		}
	}
	switch o.Notify {
	case "on", "1", "true", "yes":
		o.Notify = "on"
	case "onfailure":
	case "off", "0", "false", "no":
		o.Notify = "off"
	default:
		r.Problem("ZOPS_BACKUP_NOTIFY", o.Notify, "want on (mail failures), onfailure (the systemd units mail) or off")
	}
	return o
}

func readOptions() (Options, error) {
	r := opts.New()
	o := ReadOptions(r)
	return o, r.Err()
}

func load(ctx context.Context, out io.Writer, o Options) (*Job, *config.Env, error) {
	env, err := config.Load()
	if err != nil {
		return nil, nil, err
	}
	j, err := FromConfig(ctx, env, o.Overrides, out)
	if err != nil {
		return nil, env, err
	}
	if o.Notify != "on" {
		j.Notifier = nil
	}
	return j, env, nil
}

func runJob(ctx context.Context, out io.Writer, name string, fn func(ctx context.Context, j *Job, o Options) error) error {
	o, err := readOptions()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Deadline())
	defer cancel()
	j, _, err := load(ctx, out, o)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return j.Do(ctx, name, func(ctx context.Context) error { return fn(ctx, j, o) })
}

// RunTarget is backup:run.
func RunTarget(ctx context.Context, out io.Writer) error {
	return runJob(ctx, out, "backup:run", func(ctx context.Context, j *Job, o Options) error {
		_, err := j.Run(ctx)
		return err
	})
}

// VerifyTarget is backup:verify.
func VerifyTarget(ctx context.Context, out io.Writer) error {
	return runJob(ctx, out, "backup:verify", func(ctx context.Context, j *Job, o Options) error { return j.Verify(ctx) })
}

// DrillTarget is backup:drill.
func DrillTarget(ctx context.Context, out io.Writer) error {
	return runJob(ctx, out, "backup:drill", func(ctx context.Context, j *Job, o Options) error {
		res, err := j.Drill(ctx, DrillOptions{Keep: o.KeepDrill})
		if err == nil {
			fmt.Fprintf(out, "drill: snapshot=%s against=%s tables=%d identical=%v restore_s=%.1f verify_s=%.1f total_s=%.1f\n",
				short(res.Snapshot), res.Against, res.Tables(), res.Identical(), res.RestoreSecs, res.VerifySecs, res.Seconds)
		}
		return err
	})
}

// WALTarget is backup:wal.
func WALTarget(ctx context.Context, out io.Writer) error {
	return runJob(ctx, out, "backup:wal", func(ctx context.Context, j *Job, o Options) error {
		_, err := j.ShipWAL(ctx)
		return err
	})
}

// BaseTarget is backup:base.
func BaseTarget(ctx context.Context, out io.Writer) error {
	return runJob(ctx, out, "backup:base", func(ctx context.Context, j *Job, o Options) error {
		_, err := j.BaseBackup(ctx)
		return err
	})
}

// ParseRestoreTime reads a restore time: RFC 3339 ("2026-11-27T10:15:00Z"), "2026-11-27 10:15:00"
// (UTC), or a duration ago ("15m" or "-15m").
//
// "latest" is the zero time: replay every shipped WAL segment.
func ParseRestoreTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "latest" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.UTC); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("restore time %q: use RFC 3339 (2026-11-27T10:15:00Z), \"2026-11-27 10:15:00\" (UTC), a duration ago (15m) or latest", s)
}

// RestoreTarget is backup:restore TIME. It leaves the scratch server running and prints how
// to reach and stop it. It does not mail on failure: a person is watching.
func RestoreTarget(ctx context.Context, out io.Writer, when string) error {
	target, err := ParseRestoreTime(when, time.Now())
	if err != nil {
		return err
	}
	o, err := readOptions()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Deadline())
	defer cancel()
	j, _, err := load(ctx, out, o)
	if err != nil {
		return fmt.Errorf("backup:restore: %w", err)
	}
	j.Notifier = nil
	p, err := j.Restore(ctx, target, RestoreOptions{Dir: o.RestoreDir})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "restore: target=%s base=%s wal=%s seconds=%.1f\n  connect: psql %q\n  stop:    %s\n",
		p.Target.Format(time.RFC3339), short(p.Base), short(p.WAL), p.Seconds, p.Conn, p.StopHint)
	return nil
}

// UnitsTarget is backup:units: render the box's units from the configuration into dir
// (default deploy/systemd/backup), then verify them with systemd-analyze.
func UnitsTarget(ctx context.Context, out io.Writer) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	dir := o.UnitsDir
	// The units describe the box: render the production environment (or ZOPS_BACKUP_UNITS_ENV).
	env, err := config.LoadWith(config.Options{Env: o.UnitsEnv})
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
func NotifyTarget(ctx context.Context, out io.Writer, unit string) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	env, err := config.Load()
	if err != nil {
		return err
	}
	j, err := FromConfig(ctx, env, o.Overrides, out)
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

// ReadBenchOptions reads bench:backup's options: ZOPS_BENCH_ROWS, ZOPS_BENCH_RUNS,
// ZOPS_BENCH_KEEP and the test components (ZOPS_TEST_PG_URL, ZOPS_TEST_S3_*, ZOPS_TEST_RESTIC).
func ReadBenchOptions(r *opts.Reader) BenchOptions {
	return BenchOptions{
		Rows: r.PositiveInt("ZOPS_BENCH_ROWS", 0), Runs: r.PositiveInt("ZOPS_BENCH_RUNS", 0), Keep: r.Bool("ZOPS_BENCH_KEEP", false),
		PGURL: r.String("ZOPS_TEST_PG_URL", ""), S3Endpoint: r.String("ZOPS_TEST_S3_ENDPOINT", ""),
		S3AccessKey: r.String("ZOPS_TEST_S3_ACCESS_KEY", ""), S3SecretKey: r.String("ZOPS_TEST_S3_SECRET_KEY", ""),
		S3Region: r.String("ZOPS_TEST_S3_REGION", ""), Restic: r.String("ZOPS_TEST_RESTIC", ""), Overrides: ReadOptions(r).Overrides,
	}
}

// BenchTarget is bench:backup.
func BenchTarget(ctx context.Context, out io.Writer) error {
	r := opts.New()
	o := ReadBenchOptions(r)
	if err := r.Err(); err != nil {
		return err
	}
	o.Out = out
	return Bench(ctx, o)
}

// UndeleteTarget is backup:undelete: it brings back the repository objects deleted since when
// ("" = every deleted object) in the backups bucket, with the operator's credentials (the box's
// may not). ZOPS_DRY_RUN=1 lists them without changing anything.
func UndeleteTarget(ctx context.Context, out io.Writer, when string) error {
	env, err := config.Load()
	if err != nil {
		return err
	}
	r := opts.New()
	dry := r.Bool("ZOPS_DRY_RUN", false)
	if err := r.Err(); err != nil {
		return err
	}
	var since time.Time
	if when != "" && when != "all" {
		if since, err = ParseRestoreTime(when, time.Now()); err != nil {
			return err
		}
	}
	c, err := awsx.New(ctx, env)
	if err != nil {
		return fmt.Errorf("backup:undelete: %w", err)
	}
	prefix := strings.Trim(env.Backup.Repository, "/") + "/"
	res, err := Undelete(ctx, c.S3, env.Buckets.Backups, prefix, since, dry)
	if err != nil {
		return fmt.Errorf("backup:undelete: %w", err)
	}
	verb := "restored"
	if dry {
		verb = "would restore (dry run)"
	}
	for _, k := range res.Restored {
		fmt.Fprintf(out, "  %s\n", k)
	}
	fmt.Fprintf(out, "backup:undelete: %s %d object(s) under s3://%s/%s; then run backup:verify\n", verb, len(res.Restored), env.Buckets.Backups, prefix)
	return nil
}
