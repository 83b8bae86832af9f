package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/loadtest"
	"github.com/shtetl/zmanim-ops/internal/onbox"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// TestTwinRelease runs whole releases against the running twin: source to the new version
// serving through the edge, then every refusal (version exists, lock held, bucket missing,
// failing health with automatic rollback under load), queueing on the lock and rollback.
func TestTwinRelease(t *testing.T) {
	edge := testenv.Require(t, testenv.EdgeURL)
	env, err := config.Load()
	must(t, err)
	if !env.IsTwin() {
		t.Skip("ZOPS_ENV is not the twin")
	}
	ctx := context.Background()
	base := fmt.Sprintf("it-%d", time.Now().Unix())
	var log bytes.Buffer
	opts := func(v string) Options {
		return Options{Env: env, Root: config.RepoRoot(), Version: v, AllowDirty: true, Who: "test@" + base, Out: &log}
	}
	serving := func() string {
		t.Helper()
		v, code, err := onbox.GetHealth(ctx, &http.Client{Timeout: 5 * time.Second}, edge+"/health", nil)
		if err != nil || code != 200 {
			t.Fatalf("edge /health: %d %v", code, err)
		}
		return v
	}
	defer func() {
		if t.Failed() {
			t.Logf("release output:\n%s", log.String())
		}
	}()

	v1, v2, v3 := base+".1", base+".2", base+".3"
	t.Run("release serves the new version through the edge", func(t *testing.T) {
		rep, err := Release(ctx, opts(v1))
		if err != nil {
			t.Fatal(err)
		}
		if got := serving(); got != v1 {
			t.Fatalf("edge serves %s, want %s", got, v1)
		}
		if rep.Manifest == nil || len(rep.Manifest.Artifacts) < 2 || rep.Outcome.Previous == "" {
			t.Fatalf("report %+v", rep)
		}
		if !strings.Contains(log.String(), "sha256") || !strings.Contains(log.String(), "total") {
			t.Fatalf("no summary with sha256 and step times:\n%s", log.String())
		}
	})
	if t.Failed() {
		return
	}
	w, err := wire(ctx, opts(v1))
	must(t, err)
	st := w.store

	t.Run("a released version is refused", func(t *testing.T) {
		_, err := Release(ctx, opts(v1))
		if !errors.Is(err, ErrVersionExists) || serving() != v1 {
			t.Fatalf("release of %s again: %v (serving %s)", v1, err, serving())
		}
	})
	t.Run("a held lock is named, and a waiting release queues behind it", func(t *testing.T) {
		holder := &Lock{Store: st, Info: LockInfo{Owner: "someone-else@ci", Message: "hotfix"}, Timeout: time.Minute}
		must(t, holder.Run(ctx))
		_, err := Release(ctx, opts(v2))
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "someone-else@ci") || !strings.Contains(err.Error(), "hotfix") {
			holder.Finish(ctx, nil)
			t.Fatalf("release while locked: %v", err)
		}
		if serving() != v1 {
			t.Fatal("serving version changed")
		}
		o := opts(v2)
		o.LockWait = time.Minute
		errc := make(chan error, 1)
		go func() { _, err := Release(ctx, o); errc <- err }()
		time.Sleep(3 * time.Second)
		must(t, holder.Finish(ctx, nil))
		if err := <-errc; err != nil {
			t.Fatalf("queued release: %v", err)
		}
		if got := serving(); got != v2 {
			t.Fatalf("serving %s after the queued release, want %s", got, v2)
		}
	})
	t.Run("bucket missing", func(t *testing.T) {
		o := opts(base + ".nobucket")
		e := *env
		e.Buckets.Releases = "zmanim-no-such-bucket"
		o.Env = &e
		_, err := Release(ctx, o)
		if !errors.Is(err, onbox.ErrNoBucket) || !strings.Contains(err.Error(), "twin:up") {
			t.Fatalf("missing bucket: %v", err)
		}
		if serving() != v2 {
			t.Fatal("serving version changed")
		}
	})
	t.Run("a failing release is rolled back with no failed request", func(t *testing.T) {
		envFile := filepath.Join(env.Twin.StateDir, "box", "etc", "zmanim", "api.env")
		orig, err := os.ReadFile(envFile)
		must(t, err)
		must(t, os.WriteFile(envFile, append(append([]byte{}, orig...), []byte("\nZMANIM_FAIL_IF_VERSION="+v3+"\n")...), 0o600))
		defer os.WriteFile(envFile, orig, 0o600)
		// The load ends through Plan.Stop, which lets the requests in flight finish: ending
		// it by cancelling counted the one in flight at that moment as failed (the "1 of
		// 1543 requests failed" of issue 18, reproduced 10 times in 15 stops under load).
		stopLoad := make(chan struct{})
		done := make(chan *loadtest.Result, 1)
		loadStart := time.Now()
		go func() {
			r, _ := loadtest.Run(ctx, loadtest.Plan{Name: "rollback", Target: edge, Plain: true, Stop: stopLoad,
				Stages: []loadtest.Stage{loadtest.Constant("steady", 200, 5*time.Minute)}, Window: 250 * time.Millisecond,
				Source: loadtest.SourceFunc(func(i uint64, r *loadtest.Request) { r.Method, r.URL = "GET", fmt.Sprintf("%s/health?i=%d", edge, i) })})
			done <- r
		}()
		time.Sleep(time.Second)
		relStart := time.Now()
		_, relErr := Release(ctx, opts(v3))
		relEnd := time.Now()
		time.Sleep(time.Second)
		close(stopLoad)
		res := <-done
		if !errors.Is(relErr, onbox.ErrHealthGate) || !strings.Contains(relErr.Error(), "refusing to start") {
			t.Fatalf("release of a failing build: %v, want ErrHealthGate with the log lines", relErr)
		}
		if got := serving(); got != v2 {
			t.Fatalf("serving %s after the rollback, want %s", got, v2)
		}
		var n, failed uint64
		for _, s := range res.Totals() {
			n, failed = n+s.Requests, failed+s.Failed
		}
		if failed != 0 || n < 200 {
			// Say which requests failed and when, relative to the release.
			var when []string
			for _, w := range res.Windows {
				if w.Failed > 0 {
					when = append(when, fmt.Sprintf("%d at %+.2fs", w.Failed, w.Start.Sub(relStart).Seconds()))
				}
			}
			var status []string
			for _, s := range res.Totals() {
				for code, c := range s.Status {
					status = append(status, fmt.Sprintf("%d x%d", code, c))
				}
			}
			t.Fatalf("%d of %d requests failed during the failed release (load from %+.2fs, release %.2fs long): errors %+v, status %v, by window from the release start: %v",
				failed, n, loadStart.Sub(relStart).Seconds(), relEnd.Sub(relStart).Seconds(), res.Phases[0].Errors, status, when)
		}
		if p, _ := ReadPointer(ctx, st); p.Version != v2 {
			t.Fatalf("current pointer %s after the rollback, want %s", p.Version, v2)
		}
		h, _ := History(ctx, st)
		if last := h[len(h)-1]; last.Version != v3 || last.Result != ResultRolledBack {
			t.Fatalf("history %+v", last)
		}
	})
	t.Run("rollback returns to the previous release", func(t *testing.T) {
		if _, err := Rollback(ctx, opts(""), ""); err != nil {
			t.Fatal(err)
		}
		if got := serving(); got != v1 {
			t.Fatalf("serving %s after rollback, want %s", got, v1)
		}
	})
}
