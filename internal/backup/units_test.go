package backup

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
)

func prodUnitConfig(t *testing.T) UnitConfig {
	t.Helper()
	env := config.Defaults().Environments["prod"]
	return UnitConfigFor(env)
}

func TestRenderUnits(t *testing.T) {
	t.Parallel()
	units, err := RenderUnits(prodUnitConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ unit, want string }{
		{"zops-backup.timer", "OnCalendar=*-*-* 03:00:00 UTC"},
		{"zops-backup.service", "OnFailure=zops-backup-notify@%n.service"},
		{"zops-backup.service", "ExecStart=/usr/local/bin/zops-backup run"},
		{"zops-backup-verify.timer", "OnCalendar=*-*-* 05:00:00 UTC"},
		{"zops-backup-verify.service", "OnFailure=zops-backup-notify@%n.service"},
		{"zops-wal-ship.timer", "OnUnitActiveSec=300s"},
		{"zops-wal-ship.service", "OnFailure=zops-backup-notify@%n.service"},
		{"zops-basebackup.timer", "OnCalendar=Sun *-*-* 02:00:00 UTC"},
		{"zops-basebackup.service", "ExecStart=/usr/local/bin/zops-backup base"},
		{"zops-backup-notify@.service", "ExecStart=/usr/local/bin/zops-backup notify %i"},
	}
	for _, tt := range tests {
		if !strings.Contains(units[tt.unit], tt.want) {
			t.Errorf("%s lacks %q:\n%s", tt.unit, tt.want, units[tt.unit])
		}
	}
	if len(units) != 9 {
		t.Errorf("rendered %d units, want 9", len(units))
	}
}

// The committed units in deploy/systemd/backup (installed by the AMI recipe) must be what the
// production configuration renders: `go tool mage backup:units` rewrites them.
func TestCommittedUnitsMatchConfig(t *testing.T) {
	t.Parallel()
	units, err := RenderUnits(prodUnitConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(config.RepoRoot(), "deploy", "systemd", "backup")
	for name, want := range units {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v (run `go tool mage backup:units`)", name, err)
			continue
		}
		if string(got) != want {
			t.Errorf("%s differs from the configuration; run `go tool mage backup:units`", name)
		}
	}
}

func TestVerifyUnits(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := VerifyUnits(ctx, prodUnitConfig(t)); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// A broken unit must be caught: an invalid calendar expression.
	c := prodUnitConfig(t)
	c.BackupCalendar = "every day at three"
	if err := VerifyUnits(ctx, c); err == nil {
		t.Fatal("systemd-analyze accepted OnCalendar=every day at three")
	} else {
		t.Log(err)
	}
}

func TestParseRestoreTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"2026-11-27T10:15:00Z", time.Date(2026, 11, 27, 10, 15, 0, 0, time.UTC), false},
		{"2026-11-27T12:15:00+02:00", time.Date(2026, 11, 27, 10, 15, 0, 0, time.UTC), false},
		{"2026-11-27 10:15:00", time.Date(2026, 11, 27, 10, 15, 0, 0, time.UTC), false},
		{"15m", now.Add(-15 * time.Minute), false},
		{"-2h", now.Add(-2 * time.Hour), false},
		{"yesterday", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := ParseRestoreTime(tt.in, now)
		if (err != nil) != tt.err || (!tt.err && !got.Equal(tt.want)) {
			t.Errorf("ParseRestoreTime(%q) = %v, %v; want %v (err %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestSubsetForDay(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for d := 0; d < 7; d++ {
		seen[SubsetForDay(time.Date(2026, 11, 22+d, 5, 0, 0, 0, time.UTC))] = true // Sun..Sat
	}
	for n := 1; n <= 7; n++ {
		if !seen[strconv.Itoa(n)+"/7"] {
			t.Errorf("a week never reads subset %d/7: %v", n, seen)
		}
	}
}
