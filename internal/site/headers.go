package site

import (
	"mime"
	"path"
	"strings"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// Cache-Control defaults for a Next.js static export.
const (
	// CacheImmutable is for content-hashed files under /_next/static/: their name changes
	// whenever their content does, so browsers and the edge may keep them for a year.
	CacheImmutable = "public, max-age=31536000, immutable"
	// CacheRevalidate is for HTML and every other unhashed file: browsers revalidate on each
	// use; the edge keeps it (s-maxage) until a sync invalidates it.
	CacheRevalidate = "public, max-age=0, s-maxage=86400, must-revalidate"
	// CacheManifest is for the deploy manifest, which nobody should cache.
	CacheManifest = "no-store"
)

// Rule sets the Cache-Control of the keys whose viewer path ("/" + key) matches Pattern
// (a CloudFront path pattern: "*" any characters, "?" one). The first matching rule wins.
type Rule struct {
	Pattern      string
	CacheControl string
	// Immutable marks content-hashed routes: a changed key there is never invalidated because
	// hashed names change with their content (one is invalidated anyway if it changed in place).
	Immutable bool
}

// DefaultRules are the Next.js defaults: hashed build output immutable for a year, the rest
// revalidated.
func DefaultRules() []Rule {
	return []Rule{
		{Pattern: "/_next/static/*", CacheControl: CacheImmutable, Immutable: true},
		{Pattern: "*", CacheControl: CacheRevalidate},
	}
}

// ruleFor returns the first rule matching key, or a revalidating default.
func ruleFor(rules []Rule, key string) Rule {
	p := "/" + key
	for _, r := range rules {
		if config.MatchPattern(r.Pattern, p) {
			return r
		}
	}
	return Rule{Pattern: "*", CacheControl: CacheRevalidate}
}

// contentTypes covers every type a Next.js export holds; mime.TypeByExtension depends on the
// host's /etc/mime.types, which differs between a laptop, CI and the box.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".htm":         "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".cjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".ico":         "image/x-icon",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".ttf":         "font/ttf",
	".otf":         "font/otf",
	".txt":         "text/plain; charset=utf-8",
	".xml":         "application/xml",
	".webmanifest": "application/manifest+json",
	".pdf":         "application/pdf",
	".wasm":        "application/wasm",
	".mp4":         "video/mp4",
	".webm":        "video/webm",
}

// ContentType returns the Content-Type of a key from its extension.
func ContentType(key string) string {
	ext := strings.ToLower(path.Ext(key))
	if ct, ok := contentTypes[ext]; ok {
		return ct
	}
	if ct := mime.TypeByExtension(ext); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

// isHTML reports whether a key is a page (uploaded last, invalidated when changed).
func isHTML(key string) bool {
	ext := strings.ToLower(path.Ext(key))
	return ext == ".html" || ext == ".htm"
}
