package site

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/site/nextgen"
)

func TestSyncColdRebuildOneChangeNoChange(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	st, c := newBucket(t, ep)
	clk := newClock()
	dir := t.TempDir()
	spec := nextgen.Small()
	ex, err := nextgen.Write(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run := func(name string) *Summary {
		t.Helper()
		before := st.Requests().Snapshot()
		sum, _, err := Sync(ctx, Options{Dir: dir, Store: st, Now: clk.Now, Out: quiet()})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		after := st.Requests().Snapshot()
		t.Logf("%s: %s; PUTs %d", name, sum, after["PutObject"]-before["PutObject"])
		return sum
	}
	puts := func() int { return st.Requests().Get("PutObject") }

	p0 := puts()
	sum := run("cold")
	if sum.Uploaded != ex.Files || puts()-p0 != ex.Files+1 {
		t.Fatalf("cold: uploaded %d, PUTs %d, want %d files + manifest", sum.Uploaded, puts()-p0, ex.Files)
	}
	// Rebuild: same content, new mtimes.
	if _, err := nextgen.Write(dir, spec); err != nil {
		t.Fatal(err)
	}
	p0 = puts()
	if sum := run("rebuild"); sum.Uploaded != 0 || puts() != p0 || sum.Skipped != ex.Files {
		t.Fatalf("rebuild uploaded %d (PUTs %d), skipped %d", sum.Uploaded, puts()-p0, sum.Skipped)
	}
	// One change: a page chunk and its page.
	spec.Changed, spec.Version = []int{4}, "v2"
	if _, err := nextgen.Write(dir, spec); err != nil {
		t.Fatal(err)
	}
	old := ex.PageChunks[4]
	os.Remove(filepath.Join(dir, filepath.FromSlash(old)))
	p0 = puts()
	sum = run("one change")
	if sum.Uploaded != 2 || puts()-p0 != 3 {
		t.Fatalf("one change: uploaded %d, PUTs %d; want 2 files + manifest", sum.Uploaded, puts()-p0)
	}
	if sum.Stale != 1 {
		t.Fatalf("stale %d, want the old page chunk", sum.Stale)
	}
	if got, _ := getBody(t, c, st.Bucket(), old); got == "" {
		t.Fatal("old chunk deleted inside the grace period")
	}
	p0 = puts()
	if sum := run("no change"); sum.Uploaded != 0 || puts() != p0 {
		t.Fatalf("no change uploaded %d", sum.Uploaded)
	}
	if n := st.Requests().Get("HeadObject"); n != 0 {
		t.Fatalf("%d HEAD requests; the manifest should make them unnecessary", n)
	}
}
