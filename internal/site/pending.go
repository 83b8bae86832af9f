package site

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// PendingKey records invalidation paths not yet confirmed done (issue 14, finding 11). It is
// written before the manifest (and before deleting keys), removed once CloudFront reports the
// invalidation complete; a sync that finds it sends those paths too, even with nothing else to
// do. Without it, a failed invalidation after the manifest was written left the edge serving
// old pages for a day while every rerun saw nothing to do.
const PendingKey = manifestDir + "/pending-invalidation.json"

// isSiteRecord reports whether key is one of the deploy's own records (manifest, pending
// invalidations, lock), never part of the site.
func isSiteRecord(key string) bool {
	return key == ManifestKey || strings.HasPrefix(key, manifestDir+"/")
}

type pendingRecord struct {
	Paths   []string  `json:"paths"`
	Deploy  string    `json:"deploy"`
	Written time.Time `json:"written"`
}

func readPending(ctx context.Context, s Store) ([]string, error) {
	b, err := s.Get(ctx, PendingKey)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", PendingKey, err)
	}
	var r pendingRecord
	if err := json.Unmarshal(b, &r); err != nil {
		// Unreadable: invalidate everything rather than trust a guess.
		return []string{"/*"}, nil
	}
	return r.Paths, nil
}

func writePending(ctx context.Context, s Store, paths []string, deploy string, now time.Time) error {
	b, _ := json.Marshal(pendingRecord{Paths: paths, Deploy: deploy, Written: now.UTC()})
	if _, err := s.Put(ctx, Object{Key: PendingKey, Body: strings.NewReader(string(b)), Size: int64(len(b)), ContentType: "application/json", CacheControl: CacheManifest}); err != nil {
		return fmt.Errorf("record pending invalidation: %w", err)
	}
	return nil
}

// mergePaths is the union of invalidation paths; beyond budget it is "/*" (one path, and the
// inputs are already collapsed and encoded, so they are not collapsed again).
func mergePaths(budget int, lists ...[]string) []string {
	set := map[string]bool{}
	for _, l := range lists {
		for _, p := range l {
			set[p] = true
		}
	}
	if set["/*"] || budget > 0 && len(set) > budget {
		return []string{"/*"}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// sendAndClear sends paths (already recorded in PendingKey), waits for CloudFront to finish,
// then removes the record. A failure leaves the record for the next run.
func sendAndClear(ctx context.Context, o Options, paths []string, ref string) (string, error) {
	id, err := o.Invalidator.Invalidate(ctx, paths, ref)
	if err != nil {
		return "", fmt.Errorf("invalidate: %w; the paths are recorded in s3://.../%s and the next sync sends them", err, PendingKey)
	}
	fmt.Fprintf(o.Out, "site: invalidation %s: %d paths, waiting up to %s\n", id, len(paths), o.Wait)
	if err := o.Invalidator.Wait(ctx, id, o.Wait); err != nil {
		return id, err
	}
	if err := o.Store.Delete(ctx, []string{PendingKey}); err != nil {
		return id, fmt.Errorf("invalidation %s done, but clearing %s failed: %w (the next sync invalidates those paths again)", id, PendingKey, err)
	}
	return id, nil
}
