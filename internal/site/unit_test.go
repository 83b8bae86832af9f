package site

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestContentType(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"index.html":                        "text/html; charset=utf-8",
		"_next/static/chunks/a-1.js":        "text/javascript; charset=utf-8",
		"m.MJS":                             "text/javascript; charset=utf-8",
		"_next/static/css/x.css":            "text/css; charset=utf-8",
		"data.json":                         "application/json",
		"_next/static/chunks/a.js.map":      "application/json",
		"logo.svg":                          "image/svg+xml",
		"a.png":                             "image/png",
		"a.jpg":                             "image/jpeg",
		"a.webp":                            "image/webp",
		"a.avif":                            "image/avif",
		"favicon.ico":                       "image/x-icon",
		"_next/static/media/f.woff":         "font/woff",
		"_next/static/media/f.a1b2.woff2":   "font/woff2",
		"robots.txt":                        "text/plain; charset=utf-8",
		"sitemap.xml":                       "application/xml",
		"site.webmanifest":                  "application/manifest+json",
		"LICENSE":                           "application/octet-stream",
		"docs/ünïcode page/index.html":      "text/html; charset=utf-8",
		"weird.name.with.dots.and+plus.svg": "image/svg+xml",
	}
	for key, want := range tests {
		if got := ContentType(key); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, cache string
		immutable  bool
	}{
		{"_next/static/chunks/main-abc.js", CacheImmutable, true},
		{"_next/static/css/x.css", CacheImmutable, true},
		{"index.html", CacheRevalidate, false},
		{"docs/index.html", CacheRevalidate, false},
		{"_next/data/x.json", CacheRevalidate, false},
		{"favicon.ico", CacheRevalidate, false},
	}
	for _, tc := range tests {
		r := ruleFor(DefaultRules(), tc.key)
		if r.CacheControl != tc.cache || r.Immutable != tc.immutable {
			t.Errorf("%s: %q immutable=%v, want %q %v", tc.key, r.CacheControl, r.Immutable, tc.cache, tc.immutable)
		}
	}
}

func TestCollapse(t *testing.T) {
	t.Parallel()
	universe := []string{"/", "/index.html", "/docs/index.html", "/docs/a/index.html", "/docs/b/index.html", "/docs/c/index.html",
		"/blog/x/index.html", "/blog/y/index.html", "/blog/z/index.html", "/about/index.html"}
	tests := []struct {
		name   string
		paths  []string
		budget int
		want   []string
	}{
		{"within budget untouched", []string{"/docs/a/index.html", "/about/index.html"}, 5, []string{"/about/index.html", "/docs/a/index.html"}},
		{"siblings collapse to their directory", []string{"/docs/a/index.html", "/docs/b/index.html", "/docs/c/index.html", "/about/index.html"}, 2,
			[]string{"/about/index.html", "/docs/*"}},
		{"least collateral wins", []string{"/blog/x/index.html", "/blog/y/index.html", "/docs/a/index.html", "/docs/b/index.html"}, 3,
			[]string{"/blog/*", "/docs/a/index.html", "/docs/b/index.html"}},
		{"budget one is everything", []string{"/docs/a/index.html", "/about/index.html"}, 1, []string{"/*"}},
		{"encoding", []string{"/docs/my page/index.html", "/docs/100%/ü.html", "/a+b.html"}, 5,
			[]string{"/a+b.html", "/docs/100%25/%C3%BC.html", "/docs/my%20page/index.html"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Collapse(tc.paths, universe, tc.budget)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Collapse = %v, want %v", got, tc.want)
			}
			if len(got) > tc.budget {
				t.Fatalf("%d paths over budget %d", len(got), tc.budget)
			}
		})
	}
}

func TestCachePaths(t *testing.T) {
	t.Parallel()
	got := CachePaths([]string{"index.html", "docs/index.html", "a.txt"})
	want := []string{"/", "/index.html", "/docs/index.html", "/a.txt"}
	if !slices.Equal(got, want) {
		t.Fatalf("CachePaths = %v, want %v", got, want)
	}
}

func lf(key, sha string, size int64) LocalFile {
	return LocalFile{Key: key, Path: "/x/" + key, SHA256: sha, Size: size}
}

func entry(key, sha string, size int64, etag string) Entry {
	r := ruleFor(DefaultRules(), key)
	return Entry{SHA256: sha, Size: size, ETag: etag, ContentType: ContentType(key), CacheControl: r.CacheControl}
}

func TestMakePlan(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	const chunk = "_next/static/chunks/a-1.js"
	type want struct {
		assets, pages       []string // key:reason
		skipped             int
		newlyStale, waiting []string
		del                 []string
		inval               []string
		err                 error
	}
	tests := []struct {
		name   string
		local  []LocalFile
		listed map[string]Listed
		m      map[string]Entry
		maxDel float64
		want   want
	}{
		{
			name:  "cold: assets before pages, nothing invalidated",
			local: []LocalFile{lf("index.html", "h1", 10), lf(chunk, "c1", 20)},
			want:  want{assets: []string{chunk + ":new"}, pages: []string{"index.html:new"}},
		},
		{
			name:   "unchanged by manifest and listing",
			local:  []LocalFile{lf("index.html", "h1", 10), lf(chunk, "c1", 20)},
			listed: map[string]Listed{"index.html": {10, "e1"}, chunk: {20, "e2"}},
			m:      map[string]Entry{"index.html": entry("index.html", "h1", 10, "e1"), chunk: entry(chunk, "c1", 20, "e2")},
			want:   want{skipped: 2},
		},
		{
			name:   "changed page is invalidated as / and /index.html",
			local:  []LocalFile{lf("index.html", "h2", 10), lf(chunk, "c1", 20)},
			listed: map[string]Listed{"index.html": {10, "e1"}, chunk: {20, "e2"}},
			m:      map[string]Entry{"index.html": entry("index.html", "h1", 10, "e1"), chunk: entry(chunk, "c1", 20, "e2")},
			want:   want{pages: []string{"index.html:changed"}, skipped: 1, inval: []string{"/", "/index.html"}},
		},
		{
			name:   "etag differs from manifest: unverified",
			local:  []LocalFile{lf("index.html", "h1", 10)},
			listed: map[string]Listed{"index.html": {10, "other"}},
			m:      map[string]Entry{"index.html": entry("index.html", "h1", 10, "e1")},
			want:   want{pages: []string{"index.html:unverified"}, inval: []string{"/", "/index.html"}},
		},
		{
			name:   "listed but not in manifest: unverified",
			local:  []LocalFile{lf("index.html", "h1", 10), lf(chunk, "c1", 20)},
			listed: map[string]Listed{"index.html": {10, "e1"}, chunk: {20, "e2"}},
			m:      map[string]Entry{"index.html": entry("index.html", "h1", 10, "e1")},
			want:   want{assets: []string{chunk + ":unverified"}, skipped: 1},
		},
		{
			name:   "size mismatch with listing: unverified",
			local:  []LocalFile{lf("index.html", "h1", 10)},
			listed: map[string]Listed{"index.html": {11, "e1"}},
			m:      map[string]Entry{"index.html": entry("index.html", "h1", 10, "e1")},
			want:   want{pages: []string{"index.html:unverified"}, inval: []string{"/", "/index.html"}},
		},
		{
			name:   "header change re-uploads",
			local:  []LocalFile{lf("index.html", "h1", 10)},
			listed: map[string]Listed{"index.html": {10, "e1"}},
			m:      map[string]Entry{"index.html": {SHA256: "h1", Size: 10, ETag: "e1", ContentType: "text/plain", CacheControl: CacheRevalidate}},
			want:   want{pages: []string{"index.html:headers"}, inval: []string{"/", "/index.html"}},
		},
		{
			name:   "grace: new stale kept, old stale waiting, expired deleted",
			local:  []LocalFile{lf("index.html", "h1", 10), lf("a.html", "a", 1), lf("b.html", "b", 1)},
			listed: map[string]Listed{"index.html": {10, "e1"}, "a.html": {1, "ea"}, "b.html": {1, "eb"}, "_next/static/chunks/old-1.js": {5, "o1"}, "_next/static/chunks/old-2.js": {5, "o2"}, "gone.html": {5, "g"}},
			m: map[string]Entry{"index.html": entry("index.html", "h1", 10, "e1"), "a.html": entry("a.html", "a", 1, "ea"), "b.html": entry("b.html", "b", 1, "eb"),
				"_next/static/chunks/old-2.js": {SHA256: "x", Size: 5, ETag: "o2", StaleSince: ago(time.Hour)},
				"gone.html":                    {SHA256: "y", Size: 5, ETag: "g", StaleSince: ago(8 * 24 * time.Hour)}},
			want: want{skipped: 3, newlyStale: []string{"_next/static/chunks/old-1.js"}, waiting: []string{"_next/static/chunks/old-2.js"}, del: []string{"gone.html"}, inval: []string{"/gone.html"}},
		},
		{
			name:   "stale file back in the export is live again without upload",
			local:  []LocalFile{lf("index.html", "h1", 10)},
			listed: map[string]Listed{"index.html": {10, "e1"}},
			m:      map[string]Entry{"index.html": {SHA256: "h1", Size: 10, ETag: "e1", ContentType: ContentType("index.html"), CacheControl: CacheRevalidate, StaleSince: ago(time.Hour)}},
			want:   want{skipped: 1},
		},
		{
			name:   "max-delete guard refuses",
			local:  []LocalFile{lf("index.html", "h1", 10)},
			listed: map[string]Listed{"index.html": {10, "e1"}, "a.html": {1, "a"}, "b.html": {1, "b"}},
			m:      map[string]Entry{"index.html": entry("index.html", "h1", 10, "e1")},
			want:   want{skipped: 1, newlyStale: []string{"a.html", "b.html"}, err: ErrTooManyDeletes},
		},
		{
			name:   "max-delete guard disabled with 1",
			local:  []LocalFile{lf("index.html", "h1", 10)},
			listed: map[string]Listed{"index.html": {10, "e1"}, "a.html": {1, "a"}, "b.html": {1, "b"}},
			m:      map[string]Entry{"index.html": entry("index.html", "h1", 10, "e1")},
			maxDel: 1,
			want:   want{skipped: 1, newlyStale: []string{"a.html", "b.html"}},
		},
		{
			name:   "immutable chunk changed in place is invalidated",
			local:  []LocalFile{lf("index.html", "h1", 10), lf(chunk, "c2", 20)},
			listed: map[string]Listed{"index.html": {10, "e1"}, chunk: {20, "e2"}},
			m:      map[string]Entry{"index.html": entry("index.html", "h1", 10, "e1"), chunk: entry(chunk, "c1", 20, "e2")},
			want:   want{assets: []string{chunk + ":changed"}, skipped: 1, inval: []string{"/" + chunk}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m *Manifest
			if tc.m != nil {
				m = &Manifest{Version: 1, Objects: tc.m}
			}
			p, err := MakePlan(PlanInput{Local: tc.local, Listed: tc.listed, Manifest: m, Now: now, Grace: 7 * 24 * time.Hour, MaxDeleteShare: tc.maxDel})
			if !errors.Is(err, tc.want.err) {
				t.Fatalf("err = %v, want %v", err, tc.want.err)
			}
			us := func(u []Upload) []string {
				var out []string
				for _, x := range u {
					out = append(out, x.File.Key+":"+x.Reason)
				}
				return out
			}
			check := func(what string, got, want []string) {
				t.Helper()
				if len(got) != 0 || len(want) != 0 {
					if !slices.Equal(got, want) {
						t.Errorf("%s = %v, want %v", what, got, want)
					}
				}
			}
			check("assets", us(p.Assets), tc.want.assets)
			check("pages", us(p.Pages), tc.want.pages)
			check("newly stale", p.NewlyStale, tc.want.newlyStale)
			check("waiting", p.Waiting, tc.want.waiting)
			check("delete", p.Delete, tc.want.del)
			// Deleted pages are invalidated after the deletion, changed ones before it.
			check("invalidation", mergePaths(0, p.Invalidation, p.InvalidationAfterDelete), tc.want.inval)
			if p.Skipped != tc.want.skipped {
				t.Errorf("skipped = %d, want %d", p.Skipped, tc.want.skipped)
			}
			// The next manifest: stale keys carry their time, deleted keys are gone.
			for _, k := range tc.want.del {
				if _, ok := p.Manifest.Objects[k]; ok {
					t.Errorf("deleted %s still in the next manifest", k)
				}
			}
			for _, k := range append(tc.want.newlyStale, tc.want.waiting...) {
				if e := p.Manifest.Objects[k]; e.StaleSince == nil {
					t.Errorf("stale %s has no stale time in the next manifest", k)
				}
			}
			if !strings.HasPrefix(p.DeployID, "20261127T120000Z-") {
				t.Errorf("deploy id %q", p.DeployID)
			}
		})
	}
}

func TestConflicts(t *testing.T) {
	t.Parallel()
	local := []LocalFile{lf("index.html", "h", 1), lf("docs/guide/index.html", "g", 1), lf("api", "a", 1)}
	listed := map[string]Listed{"index.html": {1, "e"}, "docs/guide": {1, "x"}, "api/v1/index.html": {1, "y"}, "api/v2.html": {1, "z"}}
	p, err := MakePlan(PlanInput{Local: local, Listed: listed, Now: time.Now(), MaxDeleteShare: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, c := range p.Conflicts {
		got[c.New] = c.Old
	}
	if !slices.Equal(got["docs/guide/index.html"], []string{"docs/guide"}) || !slices.Equal(got["api"], []string{"api/v1/index.html", "api/v2.html"}) || len(got) != 2 {
		t.Fatalf("conflicts = %v", got)
	}
}

func TestSpreadByDirAlternatesDirectoriesAndKeepsEveryUpload(t *testing.T) {
	t.Parallel()
	keys := []string{"_next/static/chunks/a.js", "_next/static/chunks/b.js", "_next/static/chunks/c.js",
		"_next/static/css/x.css", "img/1.png", "img/2.png", "robots.txt"}
	var in []Upload
	for _, k := range keys {
		in = append(in, Upload{File: LocalFile{Key: k}})
	}
	got := spreadByDir(in)
	var order []string
	for _, u := range got {
		order = append(order, u.File.Key)
	}
	want := []string{"_next/static/chunks/a.js", "_next/static/css/x.css", "img/1.png", "robots.txt",
		"_next/static/chunks/b.js", "img/2.png", "_next/static/chunks/c.js"}
	if !slices.Equal(order, want) {
		t.Errorf("order = %v\nwant    %v", order, want)
	}
	if one := spreadByDir(in[:3]); !slices.Equal(one, in[:3]) {
		t.Errorf("one directory: order changed to %v", one)
	}
}
