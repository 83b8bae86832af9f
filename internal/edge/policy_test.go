package edge

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
)

func TestResponseFreshness(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	api := config.CachePolicy{MinTTL: 0, DefaultTTL: 3600, MaxTTL: 3600}
	withMin := config.CachePolicy{MinTTL: 60, DefaultTTL: 600, MaxTTL: 3600}
	disabled := config.CachePolicy{}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name   string
		policy config.CachePolicy
		status int
		header http.Header
		store  bool
		ttl    time.Duration
	}{
		{"no cache-control: default TTL", api, 200, hdr(), true, time.Hour},
		{"max-age below max TTL", api, 200, hdr("Cache-Control", "public, max-age=300"), true, 5 * time.Minute},
		{"max-age above max TTL is capped", api, 200, hdr("Cache-Control", "max-age=86400"), true, time.Hour},
		{"s-maxage wins over max-age", api, 200, hdr("Cache-Control", "max-age=30, s-maxage=120"), true, 2 * time.Minute},
		{"min TTL 0 honours no-store", api, 200, hdr("Cache-Control", "no-store"), false, 0},
		{"min TTL 0 honours private", api, 200, hdr("Cache-Control", "private, max-age=600"), false, 0},
		{"min TTL 0 honours no-cache", api, 200, hdr("Cache-Control", "no-cache"), false, 0},
		{"min TTL > 0 caches no-store for min TTL", withMin, 200, hdr("Cache-Control", "no-store"), true, time.Minute},
		{"min TTL > 0 raises a short max-age", withMin, 200, hdr("Cache-Control", "max-age=5"), true, time.Minute},
		{"min TTL > 0 caps a long max-age", withMin, 200, hdr("Cache-Control", "max-age=99999"), true, time.Hour},
		{"min TTL > 0 default TTL", withMin, 200, hdr(), true, 10 * time.Minute},
		{"min TTL 0 short max-age kept", api, 200, hdr("Cache-Control", "max-age=5"), true, 5 * time.Second},
		{"Expires relative to Date", api, 200, hdr("Date", now.Format(http.TimeFormat), "Expires", now.Add(20*time.Minute).Format(http.TimeFormat)), true, 20 * time.Minute},
		{"Expires beyond max TTL", api, 200, hdr("Expires", now.Add(48*time.Hour).Format(http.TimeFormat)), true, time.Hour},
		{"max-age wins over Expires", api, 200, hdr("Cache-Control", "max-age=60", "Expires", now.Add(48*time.Hour).Format(http.TimeFormat)), true, time.Minute},
		{"max-age=0 with ETag stored for revalidation", api, 200, hdr("Cache-Control", "max-age=0", "ETag", `"v1"`), true, 0},
		{"max-age=0 without validator not stored", api, 200, hdr("Cache-Control", "max-age=0"), false, 0},
		{"CachingDisabled never stores", disabled, 200, hdr("Cache-Control", "max-age=600"), false, 0},
		{"Set-Cookie never stored", api, 200, hdr("Set-Cookie", "session=abc", "Cache-Control", "max-age=600"), false, 0},
		{"401 never stored", api, 401, hdr(), false, 0},
		{"429 never stored", api, 429, hdr("Cache-Control", "max-age=600"), false, 0},
		{"404 error caching min TTL", api, 404, hdr(), true, 10 * time.Second},
		{"503 error caching min TTL even with no-store", api, 503, hdr("Cache-Control", "no-store"), true, 10 * time.Second},
		{"404 with longer max-age", api, 404, hdr("Cache-Control", "max-age=120"), true, 2 * time.Minute},
		{"301 cached", api, 301, hdr("Cache-Control", "max-age=60"), true, time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := ResponseFreshness(tc.policy, tc.status, tc.header, now, DefaultErrorCachingMinTTL)
			if f.Store != tc.store || f.TTL != tc.ttl {
				t.Errorf("got store=%v ttl=%v (%s), want store=%v ttl=%v", f.Store, f.TTL, f.Reason, tc.store, tc.ttl)
			}
		})
	}
}

func TestKeyFor(t *testing.T) {
	t.Parallel()
	req := func(target string, kv ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		for i := 0; i < len(kv); i += 2 {
			r.Header.Add(kv[i], kv[i+1])
		}
		return r
	}
	all := config.CachePolicy{MaxTTL: 60, QueryStrings: "all", Cookies: "none"}
	none := config.CachePolicy{MaxTTL: 60, QueryStrings: "none", Cookies: "none"}
	allow := config.CachePolicy{MaxTTL: 60, QueryStrings: "allow", QueryAllow: []string{"q"}, Cookies: "none"}
	lang := config.CachePolicy{MaxTTL: 60, QueryStrings: "none", Headers: []string{"Accept-Language"}, Cookies: "all"}
	tests := []struct {
		name   string
		policy config.CachePolicy
		a, b   *http.Request
		same   bool
	}{
		{"query all: different values differ", all, req("/api/cities?q=jer"), req("/api/cities?q=tel"), false},
		{"query all: same query same key", all, req("/api/cities?q=jer"), req("/api/cities?q=jer"), true},
		{"query all: order matters", all, req("/x?a=1&b=2"), req("/x?b=2&a=1"), false},
		{"query none: ignored", none, req("/app.js?v=1"), req("/app.js?v=2"), true},
		{"query allow: other names ignored", allow, req("/x?q=1&utm=a"), req("/x?utm=b&q=1"), true},
		{"query allow: allowed name differs", allow, req("/x?q=1"), req("/x?q=2"), false},
		{"Authorization not in key (never forwarded)", all, req("/api/x", "Authorization", "Bearer a"), req("/api/x", "Authorization", "Bearer b"), true},
		{"cookies none: ignored", all, req("/x", "Cookie", "s=1"), req("/x", "Cookie", "s=2"), true},
		{"policy header in key", lang, req("/x", "Accept-Language", "he"), req("/x", "Accept-Language", "en"), false},
		{"cookies all: in key", lang, req("/x", "Cookie", "s=1"), req("/x", "Cookie", "s=2"), false},
		{"cookies all: order-insensitive", lang, req("/x", "Cookie", "a=1; b=2"), req("/x", "Cookie", "b=2; a=1"), true},
		{"path is case-sensitive", all, req("/Docs"), req("/docs"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ka := KeyFor(tc.policy, tc.a, tc.a.URL.Path)
			kb := KeyFor(tc.policy, tc.b, tc.b.URL.Path)
			if (ka == kb) != tc.same {
				t.Errorf("keys %q and %q: same=%v, want %v", ka, kb, ka == kb, tc.same)
			}
		})
	}
}

func TestDirectoryIndex(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/docs/":          "/docs/index.html",
		"/docs":           "/docs/index.html",
		"/":               "/index.html",
		"/app.js":         "/app.js",
		"/v1.2/guide":     "/v1.2/guide/index.html",
		"/_next/a.b/c.js": "/_next/a.b/c.js",
	} {
		if got := DirectoryIndex(in); got != want {
			t.Errorf("DirectoryIndex(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInvalidationMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/*", "/api/cities", true},
		{"/docs/*", "/docs/index.html", true},
		{"/docs/*", "/documents/x", false},
		{"/api/cities", "/api/cities", true},
		{"/api/cities", "/api/cities/1", false},
		{"/Docs/*", "/docs/index.html", false},
	}
	for _, tc := range tests {
		if got := InvalidationMatches(tc.pattern, tc.path); got != tc.want {
			t.Errorf("InvalidationMatches(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

func TestTierEviction(t *testing.T) {
	t.Parallel()
	tr := newTier("edge", 200)
	for i := range 1000 {
		tr.put(fmt.Sprint(i), &entry{path: "/x"})
		if tr.len() > 200 {
			t.Fatalf("tier holds %d entries, limit 200", tr.len())
		}
	}
	if tr.get("999") == nil {
		t.Fatal("the newest entry was evicted")
	}
}

func TestInvalidationMatchesEncodedPaths(t *testing.T) {
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"/docs/index.html", "/docs/index.html", true},
		{"/docs/*", "/docs/a b/index.html", true},
		{"/a%20b/index.html", "/a b/index.html", true},
		{"/%D7%A9%D7%9C%D7%95%D7%9D/index.html", "/שלום/index.html", true},
		{"/a%20b/*", "/a b/c", true},
		{"/a%20b/index.html", "/a%20b/index.html", false},
		{"/docs/index.html", "/docs/other.html", false},
	}
	for _, c := range cases {
		if got := InvalidationMatches(c.pattern, c.path); got != c.want {
			t.Errorf("InvalidationMatches(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}
