package backup

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/restic"
)

func TestRunVerifyDrill(t *testing.T) {
	t.Parallel()
	j := testJob(t, 5000)
	ctx := ctxT(t, 3*time.Minute)
	res, err := j.Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.PGSnapshot == "" || res.RedisSnapshot == "" || res.PGBytes < j.MinDumpBytes {
		t.Fatalf("result = %+v", res)
	}
	if n := countSnapshots(t, j.Repo, TagZops, TagPG); n != 1 {
		t.Fatalf("pg snapshots = %d, want 1", n)
	}
	snap, err := j.Repo.Latest(ctx, restic.Filter{Tags: []string{TagPG}})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Hostname != "testbox" || !snap.HasTag("db:"+j.PG.Database) || !snap.HasTag(TagDump) {
		t.Errorf("snapshot host/tags = %s %v", snap.Hostname, snap.Tags)
	}
	nodes, err := j.Repo.Ls(ctx, snap.ID)
	if err != nil || len(nodes) != 1 || nodes[0].Path != "/"+j.DumpFilename() || nodes[0].Size != res.PGBytes {
		t.Errorf("ls = %+v, %v", nodes, err)
	}
	if err := j.Verify(ctx); err != nil {
		t.Fatalf("verify: %v", err)
	}
	d, err := j.Drill(ctx, DrillOptions{})
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	var cities int64
	for _, tr := range d.Report.Tables {
		if strings.HasSuffix(tr.Table, "cities") {
			cities = tr.TargetRows
		}
	}
	if !d.Report.Identical || cities != 5000 || d.Seconds <= 0 {
		t.Errorf("drill report identical=%v cities=%d seconds=%.1f", d.Report.Identical, cities, d.Seconds)
	}
}

func TestDrillDetectsDifference(t *testing.T) {
	t.Parallel()
	j := testJob(t, 3000)
	ctx := ctxT(t, 3*time.Minute)
	if _, err := j.Run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	execSQL(t, j.PG, "UPDATE cities SET population = population + 1 WHERE id = 17")
	_, err := j.Drill(ctx, DrillOptions{})
	if !errors.Is(err, ErrDrillMismatch) {
		t.Fatalf("drill after a live change: err = %v, want ErrDrillMismatch", err)
	}
}

func TestFaultPGDumpFails(t *testing.T) {
	t.Parallel()
	j := testJob(t, 3000)
	n, to := sesNotifier(t)
	j.Notifier = n
	j.PG.Password = "wrong-password"
	ctx := ctxT(t, 2*time.Minute)
	err := j.Do(ctx, "backup:run", func(ctx context.Context) error { _, err := j.Run(ctx); return err })
	if err == nil {
		t.Fatal("backup with bad credentials succeeded")
	}
	if !strings.Contains(err.Error(), "no snapshot was saved") || !strings.Contains(err.Error(), "command failed") {
		t.Errorf("error does not explain: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("error leaks the password: %v", err)
	}
	if c := countSnapshots(t, j.Repo); c != 0 {
		t.Errorf("snapshots after failed pg_dump = %d, want 0", c)
	}
	mails := sentEmails(t, to)
	if len(mails) != 1 {
		t.Fatalf("emails to %s = %d, want 1", to, len(mails))
	}
	m := mails[0]
	for _, want := range []string{"backup:run", "testbox", "no snapshot was saved", "Last log lines", "pg_dump"} {
		if !strings.Contains(m.Subject+m.Body, want) {
			t.Errorf("email lacks %q:\n%s\n%s", want, m.Subject, m.Body)
		}
	}
	if strings.Contains(m.Body, "wrong-password") || strings.Contains(m.Body, j.Repo.Password) {
		t.Error("email leaks a password")
	}
}

func TestFaultDumpTooSmall(t *testing.T) {
	t.Parallel()
	j := testJob(t, 10)
	j.MinDumpBytes = 10 << 20
	j.RedisAddr = ""
	_, err := j.Run(ctxT(t, 2*time.Minute))
	if !errors.Is(err, ErrDumpTooSmall) {
		t.Fatalf("err = %v, want ErrDumpTooSmall", err)
	}
	if c := countSnapshots(t, j.Repo, TagPG); c != 0 {
		t.Errorf("pg snapshots after a too-small dump = %d, want 0", c)
	}
}

func TestFaultWrongRepositoryPassword(t *testing.T) {
	t.Parallel()
	j := testJob(t, 3000)
	j.RedisAddr = ""
	ctx := ctxT(t, 2*time.Minute)
	if _, err := j.Run(ctx); err != nil {
		t.Fatalf("first run: %v", err)
	}
	j.Repo.Password = "not-the-password"
	_, err := j.Run(ctx)
	if !errors.Is(err, restic.ErrWrongPassword) {
		t.Fatalf("err = %v, want ErrWrongPassword", err)
	}
	if !strings.Contains(err.Error(), "restic-password") || strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("message should name the SSM parameter and hide the value: %v", err)
	}
}

func TestFaultConcurrentRuns(t *testing.T) {
	t.Parallel()
	j := testJob(t, 3000)
	j.RedisAddr = ""
	ctx := ctxT(t, 3*time.Minute)
	if _, err := j.Run(ctx); err != nil {
		t.Fatalf("first run: %v", err)
	}
	// Same host: the second job is refused at once, naming the running one.
	started := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = j.Do(ctx, "backup:run", func(context.Context) error { close(started); <-release; return nil })
	}()
	<-started
	err := j.Do(ctx, "backup:run", func(ctx context.Context) error { _, err := j.Run(ctx); return err })
	close(release)
	wg.Wait()
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second run on the same host: err = %v, want ErrBusy naming the holder", err)
	}

	// Another host (same repository): restic's lock. A backup holds a lock while its command
	// runs; an exclusive operation fails with ErrLocked without --retry-lock and waits with it.
	other := *j.Repo
	holding := make(chan error, 1)
	go func() {
		_, err := other.Backup(ctx, restic.BackupOptions{Host: "other", Command: []string{"sh", "-c", "sleep 6; echo held"}, StdinFilename: "held"})
		holding <- err
	}()
	waitForLock(t, ctx, j.Repo)
	_, err = j.Retain(ctx)
	if !errors.Is(err, restic.ErrLocked) {
		t.Fatalf("prune while locked: err = %v, want ErrLocked", err)
	}
	waiting := *j.Repo
	waiting.RetryLock = 40 * time.Second
	j2 := *j
	j2.Repo = &waiting
	start := time.Now()
	if _, err := j2.Retain(ctx); err != nil {
		t.Fatalf("prune with --retry-lock: %v", err)
	}
	if err := <-holding; err != nil {
		t.Fatalf("holding backup: %v", err)
	}
	t.Logf("waited %.1fs for the lock", time.Since(start).Seconds())
}

// waitForLock waits until the repository holds at least one lock file.
func waitForLock(t *testing.T, ctx context.Context, r *restic.Repo) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out, err := r.List(ctx, "locks")
		if err == nil && len(out) > 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("no restic lock appeared")
}
