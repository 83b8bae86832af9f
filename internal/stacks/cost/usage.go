package cost

import (
	"fmt"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// Usage is what the request- and storage-billed services are priced at: the configured
// assumptions (config.CostUsage), the expected rate, and the work the toolkit itself schedules,
// derived from the backup and release settings.
type Usage struct {
	config.CostUsage
	// ExpectedRPS is load.expected_rps; Factor multiplies the viewer traffic (1 is the
	// baseline, the what-ifs use 5 and 20).
	ExpectedRPS, Factor float64
	// Runs a month of the backup timers (backup.wal_interval, backup.schedule,
	// backup.base_backup_day, backup.verify_schedule).
	WALRuns, DailyRuns, BaseRuns, VerifyRuns float64
	// WALInterval is backup.wal_interval, for the output.
	WALInterval time.Duration
	// ReleaseKeep is release.keep: the releases bucket holds that many.
	ReleaseKeep float64
	// KeepDaily is backup.keep_daily, from which the backup churn is derived.
	KeepDaily float64
}

// BackupChurn is the GB a day restic's retention deletes: the configured value, else a day's
// share of a repository that holds keep_daily days plus the one being written.
func (u Usage) BackupChurn() (gb float64, how string) {
	if u.BackupChurnGBDay > 0 {
		return u.BackupChurnGBDay, "cost.backup_churn_gb_day"
	}
	return u.BackupsGB / (u.KeepDaily + 1), fmt.Sprintf("backups_gb %g / (keep_daily %g + 1)", u.BackupsGB, u.KeepDaily)
}

// AverageRPS is the month's average viewer request rate.
func (u Usage) AverageRPS() float64 { return u.ExpectedRPS * u.AverageShare * u.Factor }

// UsageFor derives the usage of env for a month of hours.
func UsageFor(env *config.Env, hours float64) (Usage, error) {
	u := Usage{CostUsage: env.Cost, ExpectedRPS: float64(env.Load.ExpectedRPS), Factor: 1,
		WALInterval: env.Backup.WALInterval.D(), ReleaseKeep: float64(env.Release.Keep), KeepDaily: float64(env.Backup.KeepDaily)}
	if u.WALInterval <= 0 {
		return u, fmt.Errorf("cost: backup.wal_interval must be positive to count WAL shipments")
	}
	u.WALRuns = hours * float64(time.Hour) / float64(u.WALInterval)
	var probs []string
	per := func(field, cal string) float64 {
		n, err := runsPerDay(cal)
		if err != nil {
			probs = append(probs, fmt.Sprintf("backup.%s: %v", field, err))
		}
		return n * hours / 24
	}
	u.DailyRuns = per("schedule", env.Backup.Schedule)
	u.VerifyRuns = per("verify_schedule", env.Backup.VerifySchedule)
	if env.Backup.BaseBackupDay != "" {
		u.BaseRuns = hours / (24 * 7)
	}
	if len(probs) > 0 {
		return u, fmt.Errorf("cost: cannot count the backup runs a month: %s", strings.Join(probs, "; "))
	}
	return u, nil
}

// runsPerDay reads the systemd OnCalendar forms the toolkit writes: "*-*-* HH:MM[:SS] [TZ]"
// and "daily" run once a day, "Mon..Sun *-*-* ..." (one weekday) and "weekly" once a week,
// "hourly" 24 times. Anything else is refused rather than guessed.
func runsPerDay(cal string) (float64, error) {
	f := strings.Fields(cal)
	switch {
	case len(f) == 0:
		return 0, nil // not scheduled
	case f[0] == "daily":
		return 1, nil
	case f[0] == "hourly":
		return 24, nil
	case f[0] == "weekly":
		return 1.0 / 7, nil
	case f[0] == "*-*-*" && len(f) >= 2 && !strings.ContainsAny(f[1], "*,/~"):
		return 1, nil
	case len(f) >= 3 && isWeekday(f[0]) && f[1] == "*-*-*" && !strings.ContainsAny(f[2], "*,/~"):
		return 1.0 / 7, nil
	}
	return 0, fmt.Errorf("OnCalendar %q: only daily (\"*-*-* 03:00:00 UTC\"), one weekday (\"Sun *-*-* 04:00:00\"), daily, weekly or hourly are counted; extend runsPerDay in internal/stacks/cost/usage.go", cal)
}

func isWeekday(s string) bool {
	for _, d := range []string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"} {
		if s == d {
			return true
		}
	}
	return false
}
