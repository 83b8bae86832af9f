package site

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/s3lock"
)

// Finding 12 (issue 14): two site syncs at once could interleave their uploads, manifest
// writes and deletions. A sync now takes the same kind of lease as releases (internal/s3lock)
// in the bucket: a second sync fails naming the holder before touching anything, or queues
// with LockWait.
func TestTwoSyncsAtOnceDoNotInterleave(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	st, c := newBucket(t, ep)
	lease := &s3lock.S3{Client: c, Bucket: st.Bucket()}
	ctx := context.Background()
	clk := newClock()
	dir := writeTree(t, map[string]string{"index.html": "home", "a.js": "a"})

	// Someone else's sync holds the lock: ours fails at once, having written nothing.
	other := &s3lock.Lock{Store: lease, Key: LockKey, TTL: time.Minute, Info: s3lock.Info{Owner: "other@ci", What: "syncing out"}}
	if err := other.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, err := Sync(ctx, Options{Dir: dir, Store: st, Lease: lease, Who: "me@here", Now: clk.Now, Out: quiet()})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "other@ci") {
		t.Fatalf("sync while locked: %v, want ErrLocked naming other@ci", err)
	}
	for _, k := range bucketKeys(t, st) {
		if !isSiteRecord(k) {
			t.Fatalf("the refused sync wrote %s", k)
		}
	}
	// With a wait it queues, and runs once the other sync is done.
	done := make(chan error, 1)
	go func() {
		_, _, err := Sync(ctx, Options{Dir: dir, Store: st, Lease: lease, LockWait: 10 * time.Second, Who: "me@here", Now: clk.Now, Out: quiet()})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("queued sync: %v", err)
	}
	// Two real syncs started together: both end well, one after the other, and the lock is gone.
	dir2 := writeTree(t, map[string]string{"index.html": "home v2", "a.js": "a"})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, d := range []string{dir, dir2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = Sync(ctx, Options{Dir: d, Store: st, Lease: lease, LockWait: 30 * time.Second, Who: "me@here", Now: clk.Now, Out: quiet()})
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("concurrent syncs: %v", errs)
	}
	if _, err := lease.Read(ctx, LockKey); !errors.Is(err, s3lock.ErrNotFound) {
		t.Fatalf("lock left behind: %v", err)
	}
}
