package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/config"
)

// UnitConfig is what the systemd units of the box are rendered from.
type UnitConfig struct {
	Env            string        // ZOPS_ENV of the box (prod)
	Bin            string        // the zops-backup binary installed by the AMI recipe
	User           string        // runs the jobs: needs the WAL archive and peer access to PostgreSQL
	BackupCalendar string        // daily dump
	VerifyCalendar string        // repository check
	BaseCalendar   string        // weekly base backup
	WALInterval    time.Duration // WAL shipping period
	Scratch        string        // scratch directory on the data volume
	Timeout        time.Duration // per-job limit
	// Box contract (internal/boxspec): the database and Redis units, first boot, and the
	// instance file (region, SSM prefix and, on the local proof, endpoint overrides).
	PGUnit, RedisUnit, FirstBootUnit, InstanceFile string
}

// UnitConfigFor derives the units from the configuration.
func UnitConfigFor(env *config.Env) UnitConfig {
	day := env.Backup.BaseBackupDay
	if day == "" {
		day = "Sun"
	}
	return UnitConfig{
		Env:            env.Name,
		Bin:            "/usr/local/bin/zops-backup",
		User:           "postgres",
		BackupCalendar: env.Backup.Schedule,
		VerifyCalendar: env.Backup.VerifySchedule,
		BaseCalendar:   day + " *-*-* 02:00:00 UTC",
		WALInterval:    env.Backup.WALInterval.D(),
		Scratch:        ProdScratch,
		Timeout:        2 * time.Hour,
		PGUnit:         boxspec.UnitPostgres,
		RedisUnit:      boxspec.UnitRedis,
		FirstBootUnit:  boxspec.UnitFirstBoot,
		InstanceFile:   boxspec.InstanceFile,
	}
}

// The failure path: every job unit names OnFailure=zops-backup-notify@%n.service, which mails
// the unit's last journal lines through SES. The jobs themselves do not mail
// (ZOPS_BACKUP_NOTIFY=onfailure), so a failure sends exactly one email, also when the job was
// killed by its timeout or could not start at all.
const unitTemplates = `
-- zops-backup.service --
[Unit]
Description=zmanim-ops: daily PostgreSQL and Redis backup to restic (backup:run)
Wants=network-online.target
After=network-online.target {{.FirstBootUnit}} {{.PGUnit}} {{.RedisUnit}}
OnFailure=zops-backup-notify@%n.service

[Service]
Type=oneshot
User={{.User}}
Environment=ZOPS_ENV={{.Env}} ZOPS_BACKUP_NOTIFY=onfailure
EnvironmentFile=-{{.InstanceFile}}
CacheDirectory=zops/restic
ExecStartPre=+/usr/bin/install -d -o {{.User}} -m 0711 {{.Scratch}}
ExecStart={{.Bin}} run
TimeoutStartSec={{secs .Timeout}}
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
-- zops-backup.timer --
[Unit]
Description=zmanim-ops: daily backup at {{.BackupCalendar}}

[Timer]
OnCalendar={{.BackupCalendar}}
Persistent=true
Unit=zops-backup.service

[Install]
WantedBy=timers.target
-- zops-backup-verify.service --
[Unit]
Description=zmanim-ops: restic check with a rotating read-data subset (backup:verify)
Wants=network-online.target
After=network-online.target {{.FirstBootUnit}}
OnFailure=zops-backup-notify@%n.service

[Service]
Type=oneshot
User={{.User}}
Environment=ZOPS_ENV={{.Env}} ZOPS_BACKUP_NOTIFY=onfailure
EnvironmentFile=-{{.InstanceFile}}
CacheDirectory=zops/restic
ExecStartPre=+/usr/bin/install -d -o {{.User}} -m 0711 {{.Scratch}}
ExecStart={{.Bin}} verify
TimeoutStartSec={{secs .Timeout}}
Nice=15
-- zops-backup-verify.timer --
[Unit]
Description=zmanim-ops: repository check at {{.VerifyCalendar}}

[Timer]
OnCalendar={{.VerifyCalendar}}
Persistent=true
Unit=zops-backup-verify.service

[Install]
WantedBy=timers.target
-- zops-wal-ship.service --
[Unit]
Description=zmanim-ops: ship archived WAL to restic (backup:wal)
Wants=network-online.target
After=network-online.target {{.FirstBootUnit}} {{.PGUnit}}
OnFailure=zops-backup-notify@%n.service

[Service]
Type=oneshot
User={{.User}}
Environment=ZOPS_ENV={{.Env}} ZOPS_BACKUP_NOTIFY=onfailure
EnvironmentFile=-{{.InstanceFile}}
CacheDirectory=zops/restic
ExecStartPre=+/usr/bin/install -d -o {{.User}} -m 0711 {{.Scratch}}
ExecStart={{.Bin}} wal
TimeoutStartSec={{secs .WALInterval}}
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
-- zops-wal-ship.timer --
[Unit]
Description=zmanim-ops: ship WAL every {{.WALInterval}}

[Timer]
OnBootSec=2min
OnUnitActiveSec={{secs .WALInterval}}
AccuracySec=15s
Unit=zops-wal-ship.service

[Install]
WantedBy=timers.target
-- zops-basebackup.service --
[Unit]
Description=zmanim-ops: PostgreSQL base backup for point-in-time recovery (backup:base)
Wants=network-online.target
After=network-online.target {{.FirstBootUnit}} {{.PGUnit}}
OnFailure=zops-backup-notify@%n.service

[Service]
Type=oneshot
User={{.User}}
Environment=ZOPS_ENV={{.Env}} ZOPS_BACKUP_NOTIFY=onfailure
EnvironmentFile=-{{.InstanceFile}}
CacheDirectory=zops/restic
ExecStartPre=+/usr/bin/install -d -o {{.User}} -m 0711 {{.Scratch}}
ExecStart={{.Bin}} base
TimeoutStartSec={{secs .Timeout}}
Nice=10
-- zops-basebackup.timer --
[Unit]
Description=zmanim-ops: weekly base backup at {{.BaseCalendar}}

[Timer]
OnCalendar={{.BaseCalendar}}
Persistent=true
Unit=zops-basebackup.service

[Install]
WantedBy=timers.target
-- zops-backup-notify@.service --
[Unit]
Description=zmanim-ops: mail the failure of %i through SES

[Service]
Type=oneshot
User={{.User}}
SupplementaryGroups=systemd-journal
Environment=ZOPS_ENV={{.Env}}
EnvironmentFile=-{{.InstanceFile}}
ExecStart={{.Bin}} notify %i
`

// RenderUnits returns the unit files by name.
func RenderUnits(c UnitConfig) (map[string]string, error) {
	tmpl, err := template.New("units").Funcs(template.FuncMap{
		"secs": func(d time.Duration) string { return fmt.Sprintf("%ds", int(d.Seconds())) },
	}).Parse(unitTemplates)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, c); err != nil {
		return nil, fmt.Errorf("render units: %w", err)
	}
	units := map[string]string{}
	var name string
	var body strings.Builder
	flush := func() {
		if name != "" {
			units[name] = "# Generated by `go tool mage backup:units` from zmanim-ops.yaml; do not edit.\n" + strings.TrimLeft(body.String(), "\n")
		}
		body.Reset()
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, "-- ") && strings.HasSuffix(line, " --") {
			flush()
			name = strings.TrimSuffix(strings.TrimPrefix(line, "-- "), " --")
			continue
		}
		body.WriteString(line + "\n")
	}
	flush()
	return units, nil
}

// WriteUnits writes the units into dir and returns their paths, sorted.
func WriteUnits(dir string, units map[string]string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for name, body := range units {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return nil, fmt.Errorf("write unit %s: %w", p, err)
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths, nil
}

// VerifyUnits runs `systemd-analyze verify` on the units. systemd checks that ExecStart
// binaries exist, so the units are re-rendered into a temporary directory with Bin pointing
// to a stub executable; everything else is verified as written. The templated notify unit is
// verified through an instance (zops-backup-notify@zops-backup.service.service).
func VerifyUnits(ctx context.Context, c UnitConfig) error {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		return fmt.Errorf("verify units: systemd-analyze not found (apt-get install systemd): %w", err)
	}
	tmp, err := os.MkdirTemp("", "zops-units-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	stub := filepath.Join(tmp, "bin", filepath.Base(c.Bin))
	if err := os.MkdirAll(filepath.Dir(stub), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		return err
	}
	c.Bin = stub
	units, err := RenderUnits(c)
	if err != nil {
		return err
	}
	dir := filepath.Join(tmp, "units")
	if _, err := WriteUnits(dir, units); err != nil {
		return err
	}
	inst := filepath.Join(dir, "zops-backup-notify@zops-backup.service.service")
	if err := os.Symlink(filepath.Join(dir, "zops-backup-notify@.service"), inst); err != nil {
		return err
	}
	var args []string
	for name := range units {
		if !strings.HasSuffix(name, "@.service") {
			args = append(args, filepath.Join(dir, name))
		}
	}
	sort.Strings(args)
	args = append(args, inst)
	cmd := exec.CommandContext(ctx, analyze, append([]string{"verify", "--man=no"}, args...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	out, err := cmd.CombinedOutput()
	msg := filterAnalyze(string(out))
	if err != nil || msg != "" {
		return fmt.Errorf("systemd-analyze verify: %v\n%s", err, msg)
	}
	return nil
}

// filterAnalyze drops complaints about units outside ours (the host's own unit files, which a
// container or CI runner may ship half-configured).
func filterAnalyze(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || !strings.Contains(l, "zops-") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}
