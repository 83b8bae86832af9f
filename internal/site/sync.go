// Package site deploys the Next.js static export to the static bucket behind CloudFront.
//
// A sync compares by content hash, not size and mtime: the bucket's manifest object
// (ManifestKey) holds the SHA-256, size, ETag and headers of every key, so an unchanged
// rebuild costs one LIST and one GET. The order keeps the live site whole at every instant,
// including when a sync is interrupted:
//
//  1. new and changed assets (content-hashed /_next/static chunks first of all),
//  2. HTML pages, which reference only assets that are already in place,
//  3. the manifest,
//  4. a CloudFront invalidation of the changed pages, collapsed into wildcards within a path
//     budget, waited for,
//  5. deletion of keys that left the site longer than the grace period ago, so pages
//     opened before a deploy keep lazy-loading their old chunks.
//
// A max-delete guard refuses a sync that would take more than a set share of the site away.
package site

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/s3lock"
)

// Defaults of the options.
const (
	DefaultGrace          = 7 * 24 * time.Hour
	DefaultMaxDeleteShare = 0.5
	DefaultPathBudget     = 15
	DefaultWait           = 10 * time.Minute
	DefaultConcurrency    = 32
	DefaultLockTTL        = 10 * time.Minute
)

// LockKey is the sync lock in the static bucket (a site record: never served, never synced).
const LockKey = manifestDir + "/lock.json"

// ErrLocked means another sync holds the lock.
var ErrLocked = errors.New("another site sync holds the lock")

// Options of a sync.
type Options struct {
	Dir   string // the export directory
	Store Store
	// Invalidator purges changed pages from the CDN; nil skips invalidation (said in the output).
	Invalidator Invalidator
	Rules       []Rule        // nil means DefaultRules
	Grace       time.Duration // 0 means DefaultGrace; negative means delete at once
	// MaxDeleteShare is the largest share of live keys one sync may take out of the site
	// (0 means DefaultMaxDeleteShare, 1 disables the guard).
	MaxDeleteShare float64
	PathBudget     int           // 0 means DefaultPathBudget
	Wait           time.Duration // invalidation wait timeout; 0 means DefaultWait
	Concurrency    int           // 0 means DefaultConcurrency
	DryRun         bool          // plan only (site:plan)
	// Lease, when set, is where the sync lock (LockKey) is taken before anything is read, so
	// two syncs never interleave (issue 14, finding 12; the same lease as releases:
	// internal/s3lock). LockTTL is its staleness (default DefaultLockTTL), LockWait how long
	// to queue behind another sync (default 0: fail at once naming the holder), Who the owner.
	Lease    s3lock.Store
	LockTTL  time.Duration
	LockWait time.Duration
	Who      string
	Now      func() time.Time
	Out      io.Writer // progress and summary; nil means os.Stdout
}

func (o *Options) defaults() {
	if o.Rules == nil {
		o.Rules = DefaultRules()
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.Grace < 0 {
		o.Grace = 0
	}
	if o.MaxDeleteShare <= 0 {
		o.MaxDeleteShare = DefaultMaxDeleteShare
	}
	if o.PathBudget <= 0 {
		o.PathBudget = DefaultPathBudget
	}
	if o.Wait <= 0 {
		o.Wait = DefaultWait
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
}

// Summary is what a sync did.
type Summary struct {
	DeployID       string
	Uploaded       int
	UploadedBytes  int64
	Skipped        int
	Stale          int // keys out of the site, kept for the grace period
	Deleted        int
	Conflicts      int // old keys removed because a new key needed their name
	Invalidation   []string
	InvalidationID string
	ManifestState  string // read | missing | rebuilt | unreadable
	Duration       time.Duration
}

func (s *Summary) String() string {
	inv := "none"
	if len(s.Invalidation) > 0 {
		inv = fmt.Sprintf("%d (%s)", len(s.Invalidation), strings.Join(s.Invalidation, " "))
		if s.InvalidationID == "" {
			inv += " not sent"
		}
	}
	return fmt.Sprintf("site: deploy %s: uploaded %d (%s), skipped %d, stale %d, deleted %d, invalidation paths %s in %s",
		s.DeployID, s.Uploaded, humanBytes(s.UploadedBytes), s.Skipped, s.Stale, s.Deleted, inv, s.Duration.Round(time.Millisecond))
}

// Sync deploys o.Dir to o.Store (or, with DryRun, prints the plan), under the sync lock when
// o.Lease is set (not for a dry run, which changes nothing).
func Sync(ctx context.Context, o Options) (sum *Summary, plan *Plan, err error) {
	o.defaults()
	if o.Lease != nil && !o.DryRun {
		ttl := o.LockTTL
		if ttl <= 0 {
			ttl = DefaultLockTTL
		}
		l := &s3lock.Lock{Store: o.Lease, Key: LockKey, TTL: ttl, Wait: o.LockWait, Out: o.Out,
			Info: s3lock.Info{Owner: o.Who, PID: os.Getpid(), What: "syncing " + o.Dir}}
		if err := l.Acquire(ctx); err != nil {
			var le *s3lock.LockedError
			if errors.As(err, &le) {
				return nil, nil, fmt.Errorf("%w: %s; wait for it (ZOPS_LOCK_WAIT=10m queues) or, if it died, its lock goes stale %s after its last renewal", ErrLocked, le.Holder, le.Holder.Info.TTL)
			}
			return nil, nil, err
		}
		defer func() {
			if rerr := l.Release(context.WithoutCancel(ctx)); rerr != nil {
				err = errors.Join(err, fmt.Errorf("site lock: %w", rerr))
			}
		}()
		// A sync that lost its lock stops before its next write.
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		go func() {
			select {
			case <-l.Lost():
				cancel(l.Err())
			case <-ctx.Done():
			}
		}()
		defer cancel(nil)
	}
	return syncLocked(ctx, o)
}

func syncLocked(ctx context.Context, o Options) (*Summary, *Plan, error) {
	start := time.Now()
	// The bucket listing is the slowest read (the S3 server walks its tree); it runs while
	// the export is hashed.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type remote struct {
		listed map[string]Listed
		m      *Manifest
		state  string
		err    error
	}
	rc := make(chan remote, 1)
	go func() {
		var r remote
		r.listed, r.m, r.state, r.err = readRemote(rctx, o.Store, o.Concurrency)
		rc <- r
	}()
	files, err := Scan(ctx, o.Dir)
	if err != nil {
		return nil, nil, err
	}
	r := <-rc
	if r.err != nil {
		return nil, nil, r.err
	}
	listed, m, state := r.listed, r.m, r.state
	plan, err := MakePlan(PlanInput{
		Local: files, Listed: listed, Manifest: m, Rules: o.Rules, Now: o.Now(),
		Grace: o.Grace, MaxDeleteShare: o.MaxDeleteShare, PathBudget: o.PathBudget,
	})
	sum := &Summary{ManifestState: state}
	if plan != nil {
		sum.DeployID = plan.DeployID
		sum.Skipped = plan.Skipped
	}
	if err != nil {
		if plan != nil && o.DryRun {
			PrintPlan(o.Out, plan, state)
		}
		return sum, plan, err
	}
	if o.DryRun {
		PrintPlan(o.Out, plan, state)
		return sum, plan, nil
	}
	sum.Stale = len(plan.NewlyStale) + len(plan.Waiting)
	var pending []string
	if o.Invalidator != nil {
		if pending, err = readPending(ctx, o.Store); err != nil {
			return sum, plan, err
		}
	}
	if !plan.Changed() && state == "read" && len(pending) == 0 {
		sum.Duration = time.Since(start)
		fmt.Fprintln(o.Out, sum)
		return sum, plan, nil
	}
	conflicts := map[string][]string{}
	for _, c := range plan.Conflicts {
		conflicts[c.New] = c.Old
	}
	prog := newProgress(o.Out, len(plan.Assets)+len(plan.Pages), plan.UploadBytes())
	var mu sync.Mutex
	put := func(ctx context.Context, u Upload) error {
		etag, err := putFile(ctx, o.Store, u)
		if err != nil && len(conflicts[u.File.Key]) > 0 {
			// A filesystem-backed store (the twin's versitygw) cannot hold a file and a
			// directory of the same name. Only then is the old key removed ahead of the
			// grace period: the new key replaces it at the same URL.
			if derr := o.Store.Delete(ctx, conflicts[u.File.Key]); derr != nil {
				return fmt.Errorf("%w (and removing the conflicting old keys %v failed: %v)", err, conflicts[u.File.Key], derr)
			}
			mu.Lock()
			sum.Conflicts += len(conflicts[u.File.Key])
			for _, k := range conflicts[u.File.Key] {
				delete(plan.Manifest.Objects, k)
			}
			mu.Unlock()
			etag, err = putFile(ctx, o.Store, u)
		}
		if err != nil {
			return err
		}
		mu.Lock()
		plan.Manifest.Objects[u.File.Key] = Entry{SHA256: u.File.SHA256, Size: u.File.Size, ETag: etag, ContentType: u.ContentType, CacheControl: u.CacheControl}
		sum.Uploaded++
		sum.UploadedBytes += u.File.Size
		mu.Unlock()
		prog.done(u.File.Size)
		return nil
	}
	// Assets before pages: a page must never be live before what it references.
	for _, phase := range [][]Upload{plan.Assets, plan.Pages} {
		if err := pool(ctx, o.Concurrency, spreadByDir(phase), put); err != nil {
			prog.stop()
			return sum, plan, fmt.Errorf("upload: %w; the site still serves the previous deploy's pages (pages are uploaded only after every asset), run the sync again to finish", err)
		}
	}
	prog.stop()
	// The paths to invalidate (this deploy's and any a previous run left pending) are recorded
	// before the manifest: once the manifest is written a rerun sees nothing to upload, and
	// only the record makes it finish the invalidation.
	paths := mergePaths(o.PathBudget, pending, plan.Invalidation)
	if o.Invalidator != nil && len(paths) > 0 {
		if err := writePending(ctx, o.Store, paths, plan.DeployID, o.Now()); err != nil {
			return sum, plan, err
		}
	}
	if err := writeManifest(ctx, o.Store, plan.Manifest); err != nil {
		return sum, plan, err
	}
	waitErr := func(err error) error {
		if errors.Is(err, awsx.ErrInvalidationTimeout) {
			return fmt.Errorf("%w; the new pages are uploaded (raise ZOPS_SITE_WAIT to wait longer; the next sync invalidates again)", err)
		}
		return err
	}
	if len(paths) > 0 {
		if o.Invalidator == nil {
			sum.Invalidation = paths
			fmt.Fprintf(o.Out, "site: no CloudFront distribution configured: not invalidating %d paths\n", len(paths))
		} else {
			sum.Invalidation = paths
			id, err := sendAndClear(ctx, o, paths, "zops-site-"+plan.DeployID)
			sum.InvalidationID = id
			if err != nil {
				return sum, plan, waitErr(err)
			}
		}
	}
	if len(plan.Delete) > 0 {
		// Deleted pages are invalidated after the deletion (recorded first, so a failure
		// after the deletion is finished by the next run).
		after := plan.InvalidationAfterDelete
		if o.Invalidator != nil && len(after) > 0 {
			if err := writePending(ctx, o.Store, after, plan.DeployID, o.Now()); err != nil {
				return sum, plan, err
			}
		}
		if err := o.Store.Delete(ctx, plan.Delete); err != nil {
			return sum, plan, fmt.Errorf("delete stale keys: %w; the site is complete, the next sync retries the deletion", err)
		}
		sum.Deleted = len(plan.Delete)
		if o.Invalidator != nil && len(after) > 0 {
			if _, err := sendAndClear(ctx, o, after, "zops-site-"+plan.DeployID+"-deleted"); err != nil {
				return sum, plan, waitErr(err)
			}
			sum.Invalidation = mergePaths(0, sum.Invalidation, after)
		}
	}
	sum.Duration = time.Since(start)
	fmt.Fprintln(o.Out, sum)
	return sum, plan, nil
}

// spreadByDir orders uploads round-robin over their keys' directories, keeping the order
// within each. A filesystem-backed S3 server (versitygw, MinIO) creates an object's file in
// the directory its key names, and creations in one directory take that directory's lock
// one at a time: a Next.js export keeps most of its files in a few directories, and uploads
// in key order had every worker waiting on the same one. S3 itself does not care.
func spreadByDir(us []Upload) []Upload {
	if len(us) < 2 {
		return us
	}
	var dirs []string
	by := map[string][]Upload{}
	for _, u := range us {
		d := path.Dir(u.File.Key)
		if _, ok := by[d]; !ok {
			dirs = append(dirs, d)
		}
		by[d] = append(by[d], u)
	}
	if len(dirs) == 1 {
		return us
	}
	out := make([]Upload, 0, len(us))
	for len(out) < len(us) {
		for _, d := range dirs {
			if q := by[d]; len(q) > 0 {
				out = append(out, q[0])
				by[d] = q[1:]
			}
		}
	}
	return out
}

func putFile(ctx context.Context, s Store, u Upload) (string, error) {
	f, err := os.Open(u.File.Path)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", u.File.Key, err)
	}
	defer f.Close()
	return s.Put(ctx, Object{Key: u.File.Key, Body: f, Size: u.File.Size, SHA256: u.File.SHA256, ContentType: u.ContentType, CacheControl: u.CacheControl})
}

func writeManifest(ctx context.Context, s Store, m *Manifest) error {
	b, err := m.encode()
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	if _, err := s.Put(ctx, Object{Key: ManifestKey, Body: strings.NewReader(string(b)), Size: int64(len(b)), ContentType: "application/json", CacheControl: CacheManifest}); err != nil {
		return fmt.Errorf("write manifest: %w; the pages are uploaded, run the sync again to record them", err)
	}
	return nil
}

// readRemote lists the bucket and reads the manifest concurrently. A missing or unreadable
// manifest over a non-empty bucket is rebuilt from HEAD requests (the content hash is in
// each object's metadata).
func readRemote(ctx context.Context, s Store, concurrency int) (map[string]Listed, *Manifest, string, error) {
	var (
		listed  map[string]Listed
		listErr error
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		listed, listErr = s.List(ctx)
	}()
	raw, getErr := s.Get(ctx, ManifestKey)
	wg.Wait()
	if listErr != nil {
		return nil, nil, "", listErr
	}
	state := "read"
	var m *Manifest
	switch {
	case errors.Is(getErr, ErrNotFound):
		state = "missing"
	case getErr != nil:
		return nil, nil, "", getErr
	default:
		var err error
		if m, err = decodeManifest(raw); err != nil {
			state = "unreadable"
			m = nil
		}
	}
	if m != nil {
		return listed, m, state, nil
	}
	keys := make([]string, 0, len(listed))
	for k := range listed {
		if !isSiteRecord(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return listed, nil, state, nil
	}
	sort.Strings(keys)
	m = &Manifest{Version: manifestVersion, Objects: map[string]Entry{}}
	var mu sync.Mutex
	err := pool(ctx, concurrency, keys, func(ctx context.Context, k string) error {
		h, err := s.Head(ctx, k)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.SHA256 == "" {
			return nil // not written by us: compared as unverified, re-uploaded once
		}
		mu.Lock()
		m.Objects[k] = Entry{SHA256: h.SHA256, Size: h.Size, ETag: h.ETag, ContentType: h.ContentType, CacheControl: h.CacheControl}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, nil, "", fmt.Errorf("rebuild manifest from object metadata: %w", err)
	}
	return listed, m, "rebuilt", nil
}

// pool runs fn over items with n workers and stops at the first error.
func pool[T any](ctx context.Context, n int, items []T, fn func(context.Context, T) error) error {
	if len(items) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	for range min(n, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, items[i]); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
