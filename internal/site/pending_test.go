package site

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// failingInvalidator fails its first n Invalidate calls, then passes them on.
type failingInvalidator struct {
	Invalidator
	fail  atomic.Int32
	calls atomic.Int32
}

func (f *failingInvalidator) Invalidate(ctx context.Context, paths []string, ref string) (string, error) {
	f.calls.Add(1)
	if f.fail.Add(-1) >= 0 {
		return "", errors.New("injected: CloudFront is unavailable")
	}
	return f.Invalidator.Invalidate(ctx, paths, ref)
}

// Finding 11 (issue 14): the manifest was written before the invalidation, so after a failed
// invalidation a rerun found nothing to do and the edge served the old page for a day. The
// paths now wait in a pending-invalidation record that the next run completes.
func TestFailedInvalidationIsCompletedByTheNextRun(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	st, _ := newBucket(t, ep)
	viewer, cf := startEdge(t, ep, st.Bucket())
	ctx := context.Background()
	clk := newClock()
	dir1 := writeTree(t, map[string]string{"index.html": "home", "docs/index.html": "docs v1", "app.js": "js"})
	if _, _, err := Sync(ctx, Options{Dir: dir1, Store: st, Invalidator: cf, Now: clk.Now, Out: quiet()}); err != nil {
		t.Fatal(err)
	}
	if _, body := fetch(t, viewer+"/docs/"); body != "docs v1" {
		t.Fatalf("warm: %q", body)
	}
	dir2 := writeTree(t, map[string]string{"index.html": "home", "docs/index.html": "docs v2", "app.js": "js"})
	flaky := &failingInvalidator{Invalidator: cf}
	flaky.fail.Store(1)
	clk.Advance(time.Minute)
	if _, _, err := Sync(ctx, Options{Dir: dir2, Store: st, Invalidator: flaky, Now: clk.Now, Out: quiet()}); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("sync with a failing invalidation: err = %v", err)
	}
	if _, body := fetch(t, viewer+"/docs/"); body != "docs v1" {
		t.Fatalf("the edge should still serve the cached page: %q", body)
	}
	// The rerun: nothing to upload, but the pending invalidation is sent.
	clk.Advance(time.Minute)
	sum, _, err := Sync(ctx, Options{Dir: dir2, Store: st, Invalidator: flaky, Now: clk.Now, Out: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Uploaded != 0 || !strings.Contains(strings.Join(sum.Invalidation, " "), "/docs/index.html") || sum.InvalidationID == "" {
		t.Fatalf("rerun: uploaded %d, invalidation %v (%q); want the pending /docs/index.html sent", sum.Uploaded, sum.Invalidation, sum.InvalidationID)
	}
	if _, body := fetch(t, viewer+"/docs/"); body != "docs v2" {
		t.Fatalf("after the rerun the edge serves %q, want docs v2", body)
	}
	// Done: a third run has nothing pending.
	clk.Advance(time.Minute)
	calls := flaky.calls.Load()
	if sum, _, err := Sync(ctx, Options{Dir: dir2, Store: st, Invalidator: flaky, Now: clk.Now, Out: quiet()}); err != nil || len(sum.Invalidation) != 0 || flaky.calls.Load() != calls {
		t.Fatalf("third run: %v, invalidation %v, calls %d -> %d", err, sum.Invalidation, calls, flaky.calls.Load())
	}
}

// Deleted keys are invalidated after they are deleted: invalidated before, a viewer in between
// re-caches the old page for a day. The removed page is gone from the edge once the sync ends.
func TestDeletedPagesAreInvalidatedAfterDeletion(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	st, _ := newBucket(t, ep)
	viewer, cf := startEdge(t, ep, st.Bucket())
	ctx := context.Background()
	clk := newClock()
	dir1 := writeTree(t, map[string]string{"index.html": "home", "old/index.html": "old page"})
	if _, _, err := Sync(ctx, Options{Dir: dir1, Store: st, Invalidator: cf, Now: clk.Now, Out: quiet()}); err != nil {
		t.Fatal(err)
	}
	if r, body := fetch(t, viewer+"/old/"); r.StatusCode != 200 {
		t.Fatalf("after deploy 1: %d %q", r.StatusCode, body)
	}
	dir2 := writeTree(t, map[string]string{"index.html": "home"})
	if _, _, err := Sync(ctx, Options{Dir: dir2, Store: st, Invalidator: cf, Now: clk.Now, Out: quiet(), Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if r, body := fetch(t, viewer+"/old/"); r.StatusCode != 200 {
		t.Fatalf("after deploy 2: %d %q", r.StatusCode, body)
	}
	clk.Advance(2 * time.Hour)
	// The old page is cached at the edge right before the deleting sync, as a viewer would.
	var deleted atomic.Bool
	observed := &observingStore{Store: st, onDelete: func() {
		if deleted.Load() {
			return // the later delete of the pending record
		}
		if r, body := fetch(t, viewer+"/old/"); r.StatusCode != 200 || body != "old page" {
			t.Errorf("old page before its deletion: %d %q", r.StatusCode, body)
		}
		deleted.Store(true)
	}}
	sum, _, err := Sync(ctx, Options{Dir: dir2, Store: observed, Invalidator: cf, Now: clk.Now, Out: quiet(), Grace: time.Hour})
	if err != nil || sum.Deleted != 1 || !deleted.Load() {
		t.Fatalf("deleting sync: %v, deleted %d", err, sum.Deleted)
	}
	if r, body := fetch(t, viewer+"/old/"); r.StatusCode == 200 {
		t.Fatalf("the deleted page is still served from the edge: %q (X-Cache %s)", body, r.Header.Get("X-Cache"))
	}
}

// observingStore calls onDelete right before deleting keys.
type observingStore struct {
	Store
	onDelete func()
}

func (o *observingStore) Delete(ctx context.Context, keys []string) error {
	if len(keys) > 0 && o.onDelete != nil {
		o.onDelete()
	}
	return o.Store.Delete(ctx, keys)
}
