package daemon

import (
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
)

func TestBackupJobsFollowTheBoxTimers(t *testing.T) {
	env, err := config.LoadWith(config.Options{Env: "local", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 4, 30, 0, 0, time.UTC) // a Friday
	want := map[string]time.Time{
		"zops-backup.service":        time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC),
		"zops-backup-verify.service": time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC),
		"zops-basebackup.service":    time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC), // Sunday
		"zops-wal-ship.service":      now.Add(5 * time.Minute),
	}
	jobs := BackupJobs(env)
	if len(jobs) != len(want) {
		t.Fatalf("%d jobs, want %d", len(jobs), len(want))
	}
	for _, j := range jobs {
		got, err := j.Next(now)
		if err != nil {
			t.Fatalf("%s: %v", j.Unit, err)
		}
		if !got.Equal(want[j.Unit]) {
			t.Errorf("%s next = %s, want %s", j.Unit, got, want[j.Unit])
		}
	}
}

func TestNextRejectsCalendarsItCannotSchedule(t *testing.T) {
	for _, c := range []string{"daily", "Mon..Fri *-*-* 03:00:00 UTC", "*-*-* 25:00:00 UTC", "*-*-* 03:00:00 Europe/London", "Xyz *-*-* 03:00:00 UTC"} {
		if _, err := (Job{Calendar: c}).Next(time.Now()); err == nil {
			t.Errorf("calendar %q accepted", c)
		}
	}
}
