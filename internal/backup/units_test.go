package backup

import (
	"context"
	"os"
	"path/filepath"
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
		{"zops-backup-verify.timer", "OnCalendar=Sun *-*-* 05:00:00 UTC"},
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
