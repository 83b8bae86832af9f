package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/box"
	"github.com/shtetl/zmanim-ops/internal/config"
)

// Job is one backup job the twin runs on its own scheduler, mirroring a systemd timer of the
// box (deploy/systemd/backup): the same zops-backup command, the same OnFailure= notification.
type Job struct {
	Unit     string        // the box's service unit, passed to `zops-backup notify`
	Args     []string      // zops-backup arguments
	Calendar string        // OnCalendar= of the timer ("" when Every is set)
	Every    time.Duration // OnUnitActiveSec= of the timer
	Nice     int           // Nice= of the service: a backup must not take the API's CPU
}

// BackupJobs returns the box's backup timers for env.
func BackupJobs(env *config.Env) []Job {
	return []Job{
		{Unit: "zops-backup.service", Args: []string{"run"}, Calendar: env.Backup.Schedule, Nice: 10},
		{Unit: "zops-backup-verify.service", Args: []string{"verify"}, Calendar: env.Backup.VerifySchedule, Nice: 15},
		{Unit: "zops-basebackup.service", Args: []string{"base"}, Calendar: env.Backup.BaseBackupDay + " *-*-* 02:00:00 UTC", Nice: 10},
		{Unit: "zops-wal-ship.service", Args: []string{"wal"}, Every: env.Backup.WALInterval.D(), Nice: 10},
	}
}

// Next returns the first time after now that the job is due. Calendars take the forms the
// toolkit generates: "*-*-* HH:MM:SS UTC", optionally preceded by a weekday ("Sun").
func (j Job) Next(now time.Time) (time.Time, error) {
	if j.Every > 0 {
		return now.Add(j.Every), nil
	}
	f := strings.Fields(j.Calendar)
	var day string
	if len(f) == 4 {
		day, f = f[0], f[1:]
	}
	if len(f) != 3 || f[0] != "*-*-*" || f[2] != "UTC" {
		return time.Time{}, fmt.Errorf("calendar %q: the twin schedules \"[Dow] *-*-* HH:MM:SS UTC\"", j.Calendar)
	}
	clock, err := time.Parse("15:04:05", f[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("calendar %q: %w", j.Calendar, err)
	}
	now = now.UTC()
	for d := 0; d <= 7; d++ {
		t := time.Date(now.Year(), now.Month(), now.Day()+d, clock.Hour(), clock.Minute(), clock.Second(), 0, time.UTC)
		if t.After(now) && (day == "" || strings.EqualFold(t.Weekday().String()[:3], day)) {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("calendar %q: weekday %q is not Mon..Sun", j.Calendar, day)
}

// schedule runs the jobs with bin (zops-backup) until ctx is done. Output goes to logf; a
// failed job runs `zops-backup notify UNIT`, as the units' OnFailure= does.
func schedule(ctx context.Context, bin string, jobs []Job, logf *os.File, log *slog.Logger) {
	for _, j := range jobs {
		go func(j Job) {
			for {
				next, err := j.Next(time.Now())
				if err != nil {
					log.Error("backup schedule", "unit", j.Unit, "err", err.Error())
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(next)):
				}
				if err := runJob(ctx, bin, j.Args, j.Nice, logf); err != nil && ctx.Err() == nil {
					log.Error("backup job failed", "unit", j.Unit, "err", err.Error())
					_ = runJob(ctx, bin, []string{"notify", j.Unit}, 0, logf)
				}
			}
		}(j)
	}
}

// runJob runs zops-backup with args at nice (the unit's Nice=) and waits for it.
func runJob(ctx context.Context, bin string, args []string, nice int, logf *os.File) error {
	fmt.Fprintf(logf, "---- %s zops-backup %s\n", time.Now().UTC().Format(time.RFC3339), strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := box.StartAtNice(nice, cmd.Start); err != nil {
		return err
	}
	return cmd.Wait()
}
