package daemon

import (
	"context"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/backup"
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

// The twin runs each job at its unit's Nice=, so that a backup on the twin takes the API's
// CPU no more than one on the box does (bench:release saw restic's CPU as latency spikes).
func TestBackupJobsRunAtTheirUnitsNice(t *testing.T) {
	env, err := config.LoadWith(config.Options{Env: "local", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	units, err := backup.RenderUnits(backup.UnitConfigFor(env))
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range BackupJobs(env) {
		text, ok := units[j.Unit]
		if !ok {
			t.Fatalf("%s: no such unit among %d rendered", j.Unit, len(units))
		}
		want := 0
		if m := regexp.MustCompile(`(?m)^Nice=(-?\d+)$`).FindStringSubmatch(text); m != nil {
			want, _ = strconv.Atoi(m[1])
		}
		if j.Nice != want || want == 0 {
			t.Errorf("%s: the twin runs it at nice %d, the unit says Nice=%d (every backup unit needs one)", j.Unit, j.Nice, want)
		}
	}

	logf, err := os.CreateTemp(t.TempDir(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	if err := runJob(context.Background(), "/bin/sh", []string{"-c", `cut -d' ' -f19 /proc/$$/stat`}, 10, logf); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(logf.Name())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if got := lines[len(lines)-1]; got != "10" {
		t.Errorf("job ran at nice %q, want 10:\n%s", got, out)
	}
	if n := niceOfThisThread(t); n != 0 {
		t.Errorf("the scheduler's threads are now at nice %d", n)
	}
}

// niceOfThisThread reads the nice of the calling OS thread (the process's first thread may
// be the one startLow lowered and left parked, which the Go runtime then never runs on).
func niceOfThisThread(t *testing.T) int {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	n, _ := strconv.Atoi(f[16])
	return n
}
