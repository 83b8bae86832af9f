package edge

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// DefaultErrorCachingMinTTL is CloudFront's default error caching minimum TTL: how long an
// error response (404, 503, ...) from the origin stays cached when the origin does not ask
// for longer.
const DefaultErrorCachingMinTTL = 10 * time.Second

// Statuses CloudFront caches with the policy's TTLs, and the error statuses it caches for the
// error caching minimum TTL. Anything else (401, 429, 409, ...) is never stored.
var (
	cacheableStatus = []int{200, 203, 204, 300, 301, 302, 307, 308, 410}
	errorStatus     = []int{400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504}
)

// Freshness is what the cache policy decides for one origin response.
type Freshness struct {
	Store  bool          // the response may be stored in the cache tiers
	TTL    time.Duration // how long it stays fresh; 0 means revalidate on every request
	Reason string        // why, for logs and tests
}

// ResponseFreshness applies CloudFront's expiration rules ("Manage how long content stays in
// the cache") to an origin response:
//   - a policy with max TTL 0 (CachingDisabled) never stores anything;
//   - Cache-Control no-store, no-cache or private: not cached when min TTL is 0, cached for
//     min TTL otherwise;
//   - s-maxage, else max-age, else Expires gives the origin's TTL: with min TTL 0 the lesser of
//     it and max TTL, otherwise it is clamped to [min TTL, max TTL];
//   - no Cache-Control max-age/s-maxage and no Expires: the default TTL (at least min TTL);
//   - error statuses (404, 503, ...) stay for the error caching minimum TTL, or the origin's
//     max-age when longer;
//   - a response with Set-Cookie is passed to the viewer but never stored: the twin refuses to
//     hand one viewer's cookie to another (CloudFront does not cache Set-Cookie either).
//
// A TTL of 0 is stored only when the response has a validator (ETag or Last-Modified), so that
// the next request revalidates it with a conditional GET, as CloudFront does.
func ResponseFreshness(p config.CachePolicy, status int, h http.Header, now time.Time, errorMinTTL time.Duration) Freshness {
	if !p.Caches() {
		return Freshness{Reason: "cache policy never caches (max_ttl 0)"}
	}
	isError := slices.Contains(errorStatus, status)
	if !isError && !slices.Contains(cacheableStatus, status) {
		return Freshness{Reason: "status " + strconv.Itoa(status) + " is not cacheable"}
	}
	if len(h.Values("Set-Cookie")) > 0 {
		return Freshness{Reason: "response sets a cookie"}
	}
	cc := parseCacheControl(h.Values("Cache-Control"))
	minTTL, maxTTL := secs(p.MinTTL), secs(p.MaxTTL)
	origin, hasOrigin := originTTL(cc, h, now)
	if isError {
		ttl := errorMinTTL
		if hasOrigin && origin > ttl {
			ttl = min(origin, maxTTL)
		}
		return Freshness{Store: ttl > 0, TTL: ttl, Reason: "error caching minimum TTL"}
	}
	if cc.has("no-store") || cc.has("no-cache") || cc.has("private") {
		if minTTL == 0 {
			return Freshness{Reason: "origin forbids caching (no-store/no-cache/private) and min_ttl is 0"}
		}
		return Freshness{Store: true, TTL: minTTL, Reason: "no-store/no-cache/private overridden by min_ttl"}
	}
	var f Freshness
	switch {
	case !hasOrigin:
		f = Freshness{TTL: max(secs(p.DefaultTTL), minTTL), Reason: "default_ttl (no max-age, s-maxage or Expires)"}
	case p.MinTTL == 0:
		f = Freshness{TTL: min(origin, maxTTL), Reason: "origin TTL capped at max_ttl"}
	default:
		f = Freshness{TTL: min(max(origin, minTTL), maxTTL), Reason: "origin TTL clamped to [min_ttl, max_ttl]"}
	}
	f.Store = f.TTL > 0 || h.Get("ETag") != "" || h.Get("Last-Modified") != ""
	return f
}

// originTTL is the lifetime the origin asks for: s-maxage, then max-age, then Expires.
func originTTL(cc cacheControl, h http.Header, now time.Time) (time.Duration, bool) {
	for _, d := range []string{"s-maxage", "max-age"} {
		if v, ok := cc[d]; ok {
			n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
			if err != nil || n < 0 {
				return 0, true // an invalid value means already stale
			}
			return time.Duration(n) * time.Second, true
		}
	}
	if v := h.Get("Expires"); v != "" {
		t, err := http.ParseTime(v)
		if err != nil {
			return 0, true
		}
		base := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			base = d
		}
		return max(t.Sub(base), 0), true
	}
	return 0, false
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

type cacheControl map[string]string

func (c cacheControl) has(d string) bool { _, ok := c[d]; return ok }

func parseCacheControl(values []string) cacheControl {
	cc := cacheControl{}
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			k, val, _ := strings.Cut(part, "=")
			cc[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(val)
		}
	}
	return cc
}

// CacheKey is the cache key CloudFront builds from a cache policy: the URI path (after the
// viewer-request function) plus the query strings, headers and cookies the policy names.
// Query strings keep the viewer's order, as CloudFront does (a=1&b=2 and b=2&a=1 are two
// objects); header names are case-insensitive, values and cookies exact.
type CacheKey struct {
	Path  string
	Query string
	Vary  string // the policy's headers and cookies
}

func (k CacheKey) String() string { return k.Path + "?" + k.Query + "#" + k.Vary }

// KeyFor builds the cache key of a viewer request whose URI is uri.
func KeyFor(p config.CachePolicy, r *http.Request, uri string) CacheKey {
	k := CacheKey{Path: uri, Query: PolicyQuery(p, r.URL.RawQuery)}
	var vary []string
	hs := slices.Clone(p.Headers)
	for i := range hs {
		hs[i] = strings.ToLower(hs[i])
	}
	slices.Sort(hs)
	for _, name := range hs {
		vary = append(vary, name+"="+strings.Join(r.Header.Values(name), ","))
	}
	if p.Cookies == "all" {
		cs := r.Cookies()
		pairs := make([]string, 0, len(cs))
		for _, c := range cs {
			pairs = append(pairs, c.Name+"="+c.Value)
		}
		slices.Sort(pairs)
		vary = append(vary, "cookie:"+strings.Join(pairs, ";"))
	}
	k.Vary = strings.Join(vary, "\n")
	return k
}

// PolicyQuery is the part of a raw query string that the policy puts in the cache key and
// forwards to the origin: none, all, or the allowed names in the viewer's order.
func PolicyQuery(p config.CachePolicy, raw string) string {
	switch p.QueryStrings {
	case "all":
		return raw
	case "allow":
		var kept []string
		for part := range strings.SplitSeq(raw, "&") {
			name, _, _ := strings.Cut(part, "=")
			if n, err := url.QueryUnescape(name); err == nil && slices.Contains(p.QueryAllow, n) {
				kept = append(kept, part)
			}
		}
		return strings.Join(kept, "&")
	default:
		return ""
	}
}

// SitePrivate reports whether uri (decoded) names the site deploy's own records
// (config.SitePrivateDir), which the directory-index function answers with 404.
func SitePrivate(uri string) bool {
	p := "/" + config.SitePrivateDir
	return uri == p || strings.HasPrefix(uri, p+"/")
}

// DirectoryIndex is the viewer-request function for static sites behind an S3 REST origin
// (trap 5): "/docs/" becomes "/docs/index.html", and "/docs" becomes "/docs/index.html" when
// its last segment has no file extension.
func DirectoryIndex(uri string) string {
	if strings.HasSuffix(uri, "/") {
		return uri + "index.html"
	}
	last := uri[strings.LastIndex(uri, "/")+1:]
	if !strings.Contains(last, ".") {
		return uri + "/index.html"
	}
	return uri
}
