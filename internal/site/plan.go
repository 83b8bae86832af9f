package site

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ErrTooManyDeletes is returned when a sync would take more than the allowed share of the
// live site out of it: usually the wrong directory, or a build that failed half-way.
var ErrTooManyDeletes = errors.New("sync would remove too much of the site")

// Reasons for an upload.
const (
	ReasonNew        = "new"        // the key is not in the bucket
	ReasonChanged    = "changed"    // the content differs from the manifest
	ReasonHeaders    = "headers"    // same content, different Content-Type or Cache-Control
	ReasonUnverified = "unverified" // in the bucket but not (or differently) in the manifest
)

// Upload is one file to put.
type Upload struct {
	File         LocalFile
	ContentType  string
	CacheControl string
	Reason       string
	Immutable    bool // matched an immutable (content-hashed) rule
	Replaces     bool // the key already exists, so the edge may hold the old bytes
}

// Conflict is a key that cannot coexist with a new key on a filesystem-backed store: a file
// that became a directory of the same name, or the other way round.
type Conflict struct {
	New string
	Old []string
}

// PlanInput is what planning needs.
type PlanInput struct {
	Local    []LocalFile
	Listed   map[string]Listed
	Manifest *Manifest // nil when the bucket has none
	Rules    []Rule
	Now      time.Time
	// Grace is how long a key stays in the bucket after it stopped being part of the site.
	Grace time.Duration
	// MaxDeleteShare is the largest share (0..1] of the live keys one sync may take out of
	// the site; 0 means the default 0.5, 1 disables the guard.
	MaxDeleteShare float64
	// PathBudget is the most invalidation paths one sync may create (wildcards count as one).
	PathBudget int
}

// Plan is what a sync will do, in order.
type Plan struct {
	DeployID string
	Files    int   // local files
	Bytes    int64 // local bytes
	// Assets are uploaded first, Pages (HTML) second, so no page ever references a missing file.
	Assets, Pages []Upload
	Skipped       int
	SkippedBytes  int64
	// NewlyStale are keys that left the site in this deploy; Waiting are stale keys still
	// inside the grace period; Delete are stale keys past it, removed last.
	NewlyStale, Waiting, Delete []string
	Conflicts                   []Conflict
	// InvalidationKeys are the keys whose cached copies must go; Invalidation are the
	// CloudFront paths covering the changed ones within the budget, sent after the uploads;
	// InvalidationAfterDelete those of the deleted ones, sent after the deletion (sent before
	// it, a viewer in between would cache the old page again).
	InvalidationKeys        []string
	Invalidation            []string
	InvalidationAfterDelete []string
	LiveKeys                int     // keys of the current site (listed, not stale)
	RemoveShare             float64 // len(NewlyStale) / LiveKeys
	// Manifest is the manifest to write once the uploads are done (ETags of uploads are
	// filled in as they complete).
	Manifest *Manifest
}

// Uploads returns every upload in order.
func (p *Plan) Uploads() []Upload { return append(append([]Upload{}, p.Assets...), p.Pages...) }

// UploadBytes is the total size of the uploads.
func (p *Plan) UploadBytes() int64 {
	var n int64
	for _, u := range p.Uploads() {
		n += u.File.Size
	}
	return n
}

// Changed reports whether the sync has anything to write.
func (p *Plan) Changed() bool {
	return len(p.Assets)+len(p.Pages)+len(p.NewlyStale)+len(p.Delete) > 0
}

// MakePlan compares the export with the bucket. It is pure: the same input gives the same
// plan, which is what `site:plan` prints and `site:sync` executes.
func MakePlan(in PlanInput) (*Plan, error) {
	if in.Rules == nil {
		in.Rules = DefaultRules()
	}
	if in.MaxDeleteShare <= 0 {
		in.MaxDeleteShare = DefaultMaxDeleteShare
	}
	if in.PathBudget <= 0 {
		in.PathBudget = DefaultPathBudget
	}
	old := in.Manifest
	if old == nil {
		old = &Manifest{Objects: map[string]Entry{}}
	}
	p := &Plan{Files: len(in.Local)}
	next := &Manifest{Version: manifestVersion, Updated: in.Now.UTC(), Objects: map[string]Entry{}}
	local := make(map[string]bool, len(in.Local))
	tree := sha256.New()
	for _, f := range in.Local {
		local[f.Key] = true
		p.Bytes += f.Size
		fmt.Fprintf(tree, "%s\x00%s\n", f.Key, f.SHA256)
		r := ruleFor(in.Rules, f.Key)
		ct := ContentType(f.Key)
		want := Entry{SHA256: f.SHA256, Size: f.Size, ContentType: ct, CacheControl: r.CacheControl}
		l, listed := in.Listed[f.Key]
		e, known := old.Objects[f.Key]
		reason := ""
		switch {
		case !listed:
			reason = ReasonNew
		case !known || e.ETag != l.ETag || e.Size != l.Size:
			// The manifest does not describe what the bucket holds (lost, older than an
			// interrupted sync, or the object was written by something else).
			reason = ReasonUnverified
		case e.SHA256 != f.SHA256 || e.Size != f.Size:
			reason = ReasonChanged
		case e.ContentType != ct || e.CacheControl != r.CacheControl:
			reason = ReasonHeaders
		}
		if reason == "" {
			want.ETag = e.ETag
			next.Objects[f.Key] = want
			p.Skipped++
			p.SkippedBytes += f.Size
			continue
		}
		u := Upload{File: f, ContentType: ct, CacheControl: r.CacheControl, Reason: reason, Immutable: r.Immutable, Replaces: listed}
		if isHTML(f.Key) {
			p.Pages = append(p.Pages, u)
		} else {
			p.Assets = append(p.Assets, u)
		}
		// The entry is completed with the ETag once uploaded; until then the old one stays,
		// so a manifest written after a partial failure never claims an upload happened.
		if known {
			next.Objects[f.Key] = e
		}
		if listed && (!r.Immutable || (known && e.SHA256 != f.SHA256)) {
			p.InvalidationKeys = append(p.InvalidationKeys, f.Key)
		}
	}
	p.DeployID = in.Now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(tree.Sum(nil))[:12]
	next.Deploy = p.DeployID

	listedKeys := make([]string, 0, len(in.Listed))
	for k := range in.Listed {
		if isSiteRecord(k) {
			continue
		}
		listedKeys = append(listedKeys, k)
	}
	sort.Strings(listedKeys)
	for _, k := range listedKeys {
		if local[k] {
			if e, ok := old.Objects[k]; !ok || e.StaleSince == nil {
				p.LiveKeys++
			}
			continue
		}
		l := in.Listed[k]
		e, known := old.Objects[k]
		if !known {
			e = Entry{Size: l.Size, ETag: l.ETag}
		}
		switch {
		case e.StaleSince == nil:
			p.LiveKeys++
			now := in.Now.UTC()
			e.StaleSince = &now
			p.NewlyStale = append(p.NewlyStale, k)
			next.Objects[k] = e
		case in.Now.Sub(*e.StaleSince) >= in.Grace:
			p.Delete = append(p.Delete, k)
			if !ruleFor(in.Rules, k).Immutable {
				p.InvalidationKeys = append(p.InvalidationKeys, k)
			}
		default:
			p.Waiting = append(p.Waiting, k)
			next.Objects[k] = e
		}
	}
	p.Conflicts = conflicts(in.Local, in.Listed, local, listedKeys)
	p.Manifest = next

	if p.LiveKeys > 0 {
		p.RemoveShare = float64(len(p.NewlyStale)) / float64(p.LiveKeys)
	}
	universe := make([]string, 0, len(in.Local))
	for _, f := range in.Local {
		if !ruleFor(in.Rules, f.Key).Immutable {
			universe = append(universe, f.Key)
		}
	}
	sort.Strings(p.InvalidationKeys)
	deleted := map[string]bool{}
	for _, k := range p.Delete {
		deleted[k] = true
	}
	var changed, gone []string
	for _, k := range p.InvalidationKeys {
		if deleted[k] {
			gone = append(gone, k)
		} else {
			changed = append(changed, k)
		}
	}
	p.Invalidation = Collapse(CachePaths(changed), CachePaths(universe), in.PathBudget)
	if len(gone) > 0 {
		p.InvalidationAfterDelete = Collapse(CachePaths(gone), CachePaths(append(universe, gone...)), in.PathBudget)
	}
	if in.MaxDeleteShare < 1 && p.RemoveShare > in.MaxDeleteShare {
		return p, fmt.Errorf("%w: %d of the %d files now live (%.0f%%) are not in the export, more than the %.0f%% allowed; check the directory is the full export, or allow it with ZOPS_SITE_MAX_DELETE=%.2f (1 disables the guard)",
			ErrTooManyDeletes, len(p.NewlyStale), p.LiveKeys, 100*p.RemoveShare, 100*in.MaxDeleteShare, min(1, p.RemoveShare+0.01))
	}
	return p, nil
}

// conflicts finds old keys that are a parent "file" of a new key (a/b vs a/b/c) or live
// beneath a new key (a/b/c vs a/b).
func conflicts(files []LocalFile, listed map[string]Listed, local map[string]bool, listedKeys []string) []Conflict {
	var out []Conflict
	for _, f := range files {
		if _, ok := listed[f.Key]; ok {
			continue
		}
		var old []string
		for i := strings.Index(f.Key, "/"); i >= 0; {
			parent := f.Key[:i]
			if _, ok := listed[parent]; ok && !local[parent] {
				old = append(old, parent)
			}
			j := strings.Index(f.Key[i+1:], "/")
			if j < 0 {
				break
			}
			i += 1 + j
		}
		prefix := f.Key + "/"
		for i := sort.SearchStrings(listedKeys, prefix); i < len(listedKeys) && strings.HasPrefix(listedKeys[i], prefix); i++ {
			old = append(old, listedKeys[i])
		}
		if len(old) > 0 {
			out = append(out, Conflict{New: f.Key, Old: old})
		}
	}
	return out
}
