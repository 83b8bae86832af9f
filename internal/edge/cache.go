package edge

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// entry is one stored response. Tiers share entries by value: the edge copies the shield's
// entry, so both report the same Age and expire together, as CloudFront's tiers do when the
// shield passes its Age header on.
type entry struct {
	path    string // URI path of the key, for invalidations
	status  int
	header  http.Header
	body    []byte
	date    time.Time // when the origin produced the response (Age counts from here)
	expires time.Time // fresh until then
}

func (e *entry) fresh(now time.Time) bool { return now.Before(e.expires) }

// age is the Age header value: whole seconds since the origin produced the response.
func (e *entry) age(now time.Time) int64 {
	a := int64(now.Sub(e.date) / time.Second)
	return max(a, 0)
}

// validators of the stored response for a conditional request.
func (e *entry) conditional(h http.Header) {
	if v := e.header.Get("ETag"); v != "" {
		h.Set("If-None-Match", v)
	}
	if v := e.header.Get("Last-Modified"); v != "" {
		h.Set("If-Modified-Since", v)
	}
}

func (e *entry) hasValidators() bool {
	return e.header.Get("ETag") != "" || e.header.Get("Last-Modified") != ""
}

// tier is one cache (edge location or Origin Shield).
type tier struct {
	name string
	max  int // entries kept; beyond it some are evicted, as a full CloudFront cache does
	mu   sync.RWMutex
	m    map[string]*entry
}

func newTier(name string, max int) *tier { return &tier{name: name, max: max, m: map[string]*entry{}} }

func (t *tier) get(key string) *entry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[key]
}

func (t *tier) put(key string, e *entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[key]; !ok && t.max > 0 && len(t.m) >= t.max {
		// Evict about 1% of the objects, arbitrary ones (map order is random): a rough stand-in
		// for CloudFront dropping less popular objects from a full cache.
		n := max(t.max/100, 1)
		for k := range t.m {
			delete(t.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
	t.m[key] = e
}

func (t *tier) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// purge removes every entry whose path matches one of the invalidation paths and returns how
// many it removed.
func (t *tier) purge(paths []string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k, e := range t.m {
		for _, p := range paths {
			if InvalidationMatches(p, e.path) {
				delete(t.m, k)
				n++
				break
			}
		}
	}
	return n
}

// InvalidationMatches reports whether an invalidation path covers a cached object's path.
// CloudFront allows one '*' and only as the last character ("/*", "/docs/*"); an exact path
// invalidates every query-string, header and cookie variant of the object. Matching is
// case-sensitive. Paths arrive percent-encoded, as CloudFront requires for spaces and
// non-ASCII characters, and are compared decoded with the decoded request path.
func InvalidationMatches(pattern, path string) bool {
	if dec, err := url.PathUnescape(pattern); err == nil {
		pattern = dec
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(path, prefix)
	}
	return pattern == path
}
