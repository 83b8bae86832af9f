package backup

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shtetl/zmanim-ops/internal/restic"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// WALArchiveEnv names the directory the test PostgreSQL's archive_command copies WAL to.
const WALArchiveEnv = "ZOPS_TEST_PG_WAL_ARCHIVE"

// publicDir makes a scratch directory the postgres user can enter (t.TempDir is 0700 root).
func publicDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "zops-pitr-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(d, 0o755)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func queryInt(t *testing.T, url, sql string) int64 {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(context.Background())
	var n int64
	if err := c.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// switchAndWaitArchived closes the current WAL segment and waits until it is archived.
func switchAndWaitArchived(t *testing.T, url string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var seg string
	if err := c.QueryRow(context.Background(), "SELECT pg_walfile_name(pg_switch_wal())").Scan(&seg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var last *string
		if err := c.QueryRow(context.Background(), "SELECT last_archived_wal FROM pg_stat_archiver").Scan(&last); err != nil {
			t.Fatal(err)
		}
		if last != nil && *last >= seg {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("segment %s was not archived within 60s (archive_command?)", seg)
}

func TestPITR(t *testing.T) {
	t.Parallel()
	archive := testenv.Require(t, WALArchiveEnv)
	j := testJob(t, 2000)
	j.RedisAddr = ""
	j.WALArchiveDir = archive
	ctx := ctxT(t, 5*time.Minute)
	if _, err := j.BaseBackup(ctx); err != nil {
		t.Fatalf("base backup: %v", err)
	}
	execSQL(t, j.PG, "CREATE TABLE pitr (id int, phase text); INSERT INTO pitr SELECT g, 'first' FROM generate_series(1,100) g")
	switchAndWaitArchived(t, j.PG.URL())
	if _, err := j.ShipWAL(ctx); err != nil {
		t.Fatalf("ship: %v", err)
	}
	time.Sleep(1200 * time.Millisecond)
	target := time.Now()
	time.Sleep(1200 * time.Millisecond)
	execSQL(t, j.PG, "INSERT INTO pitr SELECT g, 'later' FROM generate_series(101,150) g")
	switchAndWaitArchived(t, j.PG.URL())
	if _, err := j.ShipWAL(ctx); err != nil {
		t.Fatalf("ship: %v", err)
	}

	p, err := j.Restore(ctx, target, RestoreOptions{Dir: filepath.Join(publicDir(t), "r")})
	if err != nil {
		t.Fatalf("restore to %s: %v", target.Format(time.RFC3339Nano), err)
	}
	defer p.Stop(context.Background())
	first := queryInt(t, p.URL, "SELECT count(*) FROM pitr WHERE phase = 'first'")
	later := queryInt(t, p.URL, "SELECT count(*) FROM pitr WHERE phase = 'later'")
	if first != 100 || later != 0 {
		t.Fatalf("restored to %s: first=%d later=%d, want 100 and 0", target.Format(time.RFC3339Nano), first, later)
	}
	if n := queryInt(t, p.URL, "SELECT count(*) FROM cities"); n != 2000 {
		t.Errorf("cities in restore = %d, want 2000", n)
	}
	t.Logf("PITR restore took %.1fs on port %d", p.Seconds, p.Port)

	// "latest": every shipped segment replayed, promoted at the end of the archive (what
	// backup:recover does on a box whose volume was lost).
	t.Run("latest", func(t *testing.T) {
		p, err := j.Restore(ctx, time.Time{}, RestoreOptions{Dir: filepath.Join(publicDir(t), "r")})
		if err != nil {
			t.Fatalf("restore latest: %v", err)
		}
		defer p.Stop(context.Background())
		if later := queryInt(t, p.URL, "SELECT count(*) FROM pitr WHERE phase = 'later'"); later != 50 {
			t.Fatalf("latest restore has %d later rows, want 50", later)
		}
		conf, _ := os.ReadFile(filepath.Join(p.DataDir, "postgresql.auto.conf"))
		if strings.Contains(string(conf), "recovery_target_time") || !strings.Contains(string(conf), RestoreConfMarker) {
			t.Fatalf("latest restore settings:\n%s", conf)
		}
		if err := p.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := stripRestoreConf(filepath.Join(p.DataDir, "postgresql.auto.conf")); err != nil {
			t.Fatal(err)
		}
		conf, _ = os.ReadFile(filepath.Join(p.DataDir, "postgresql.auto.conf"))
		if strings.Contains(string(conf), "restore_command") || strings.Contains(string(conf), RestoreConfMarker) {
			t.Fatalf("scratch settings left for the live cluster:\n%s", conf)
		}
	})
	t.Run("target beyond shipped WAL", func(t *testing.T) {
		_, err := j.Restore(ctx, time.Now().Add(time.Hour), RestoreOptions{Dir: filepath.Join(publicDir(t), "r")})
		if !errors.Is(err, ErrTargetNotHit) {
			t.Fatalf("err = %v, want ErrTargetNotHit", err)
		}
		t.Log(err)
	})
	t.Run("target before any base", func(t *testing.T) {
		_, err := j.Restore(ctx, time.Now().Add(-24*time.Hour), RestoreOptions{})
		if !errors.Is(err, ErrNoBase) {
			t.Fatalf("err = %v, want ErrNoBase", err)
		}
	})
	t.Run("disk full in scratch", func(t *testing.T) {
		dir := publicDir(t)
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
			t.Fatalf("mount a 4 MiB tmpfs (needs root): %v: %s", err, out)
		}
		defer exec.Command("umount", "-l", dir).Run()
		before := queryInt(t, j.PG.URL(), "SELECT count(*) FROM pitr")
		_, err := j.Restore(ctx, target, RestoreOptions{Dir: filepath.Join(dir, "r")})
		if !errors.Is(err, ErrScratchFull) || !strings.Contains(err.Error(), "live database was not touched") {
			t.Fatalf("err = %v, want ErrScratchFull", err)
		}
		t.Log(err)
		if after := queryInt(t, j.PG.URL(), "SELECT count(*) FROM pitr"); after != before {
			t.Errorf("live rows changed: %d -> %d", before, after)
		}
	})
}

func TestPickPITR(t *testing.T) {
	t.Parallel()
	at := func(m int) time.Time { return time.Date(2026, 11, 27, 10, m, 0, 0, time.UTC) }
	snap := func(id string, m int) restic.Snapshot { return restic.Snapshot{ID: id, ShortID: id, Time: at(m)} }
	bases := []restic.Snapshot{snap("b1", 0), snap("b2", 30)}
	wals := []restic.Snapshot{snap("w1", 5), snap("w2", 10), snap("w3", 31), snap("w4", 40)}
	tests := []struct {
		target         int
		base, wal, err string
	}{
		{7, "b1", "w3", ""}, // w3: shipped right after b2, before the archive was trimmed
		{35, "b2", "w4", ""},
		{-1, "", "", "no base"},
	}
	for _, tt := range tests {
		b, w, err := pickPITR(append([]restic.Snapshot(nil), bases...), append([]restic.Snapshot(nil), wals...), at(0).Add(time.Duration(tt.target)*time.Minute))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("target %d: err = %v, want %q", tt.target, err, tt.err)
			}
			continue
		}
		if err != nil || b.ID != tt.base || w.ID != tt.wal {
			t.Errorf("target %d: base %s wal %s err %v, want %s %s", tt.target, b.ID, w.ID, err, tt.base, tt.wal)
		}
	}
}

// Recover replaces only a cluster first boot has just initialised: an older one is live data.
func TestRecoverRefusesAnOldCluster(t *testing.T) {
	t.Parallel()
	j := testJob(t, 10)
	ctx := ctxT(t, time.Minute)
	j.Now = func() time.Time { return time.Now().Add(100 * 24 * time.Hour) }
	if err := j.refuseLiveData(ctx, false); !errors.Is(err, ErrLiveData) || !strings.Contains(err.Error(), "ZOPS_FORCE=1") {
		t.Fatalf("old cluster: %v, want ErrLiveData naming ZOPS_FORCE=1", err)
	}
	if err := j.refuseLiveData(ctx, true); err != nil {
		t.Fatalf("forced: %v", err)
	}
	j.Now = nil
	if err := j.refuseLiveData(ctx, false); err != nil && !errors.Is(err, ErrLiveData) {
		t.Fatalf("reading the cluster's age: %v", err)
	}
}
