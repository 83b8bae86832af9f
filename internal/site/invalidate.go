package site

import (
	"fmt"
	"sort"
	"strings"

	"github.com/shtetl/zmanim-ops/internal/awsx"
)

// CachePaths returns the edge cache keys holding each key. The edge's directory-index
// function rewrites "/docs" and "/docs/" to "/docs/index.html" before the cache lookup, so
// the only cache key of a page is its rewritten path: invalidating "/docs/" would purge
// nothing. The root is the exception: CloudFront's default root object serves "/" under the
// cache key "/", so index.html is invalidated as both "/" and "/index.html".
func CachePaths(keys []string) []string {
	out := make([]string, 0, len(keys)+1)
	for _, k := range keys {
		if k == "index.html" {
			out = append(out, "/")
		}
		out = append(out, "/"+k)
	}
	return out
}

// Collapse reduces paths to at most budget invalidation paths by replacing groups with
// "dir/*" wildcards. It merges greedily, each time the directory that saves the most paths
// per unchanged cached path it would needlessly purge (universe holds every cacheable path),
// so a change confined to /docs/ invalidates /docs/* rather than /*. Paths are returned
// sorted and encoded as CloudFront wants them.
func Collapse(paths, universe []string, budget int) []string {
	if budget < 1 {
		budget = 1
	}
	set := map[string]bool{}
	for _, p := range paths {
		set[p] = true
	}
	changed := map[string]bool{}
	for _, p := range paths {
		changed[p] = true
	}
	for len(set) > budget {
		// Candidate directories: every proper ancestor "dir/" of a path in the set.
		groups := map[string]int{}
		for p := range set {
			base := strings.TrimSuffix(p, "*")
			for i := len(base) - 1; i >= 0; i-- {
				if base[i] == '/' && base[:i+1] != base {
					groups[base[:i+1]]++
				}
			}
		}
		best, bestScore := "", -1.0
		for d, n := range groups {
			if n < 2 {
				continue
			}
			collateral := 0
			for _, u := range universe {
				if strings.HasPrefix(u, d) && !changed[u] {
					collateral++
				}
			}
			score := float64(n-1) / float64(1+collateral)
			if score > bestScore || score == bestScore && len(d) > len(best) {
				best, bestScore = d, score
			}
		}
		if best == "" {
			set = map[string]bool{"/*": true}
			break
		}
		for p := range set {
			if strings.HasPrefix(p, best) {
				delete(set, p)
			}
		}
		set[best+"*"] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, encodePath(p))
	}
	sort.Strings(out)
	return out
}

// encodePath percent-encodes what CloudFront asks to be encoded in invalidation paths:
// non-ASCII bytes and the characters RFC 1738 calls unsafe. Anything else must stay as is,
// or the path no longer matches the cached object. A trailing "*" stays a wildcard.
func encodePath(p string) string {
	const unsafe = " <>\"#%{}|\\^~[]`"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x21 || c >= 0x7f || strings.IndexByte(unsafe, c) >= 0 || c == '*' && i != len(p)-1 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// The CDN side of a sync is awsx.CloudFront: the one definition of CreateInvalidation and of
// waiting for it.
var _ Invalidator = (*awsx.CloudFront)(nil)
