// Package nextgen writes a deterministic export shaped like `next build` with
// output: 'export': content-hashed chunks, CSS, fonts and media under /_next/static/, HTML
// pages (nested /docs/ pages as dir/index.html) whose <script> tags reference their chunks,
// a lazy-loaded chunk per page, and public files (favicon, robots.txt, sitemap, images).
//
// It exists for the site benchmark and tests: the same Spec gives byte-identical files
// (a "rebuild"), and Spec.Changed alters one page's chunk, which changes its hashed name and
// the one page referencing it, as a one-line code change does in a real build.
package nextgen

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Spec describes an export.
type Spec struct {
	Seed  uint64
	Pages int // HTML pages (each with its own page chunk and lazy chunk)
	// SharedChunks are split chunks not referenced by HTML (loaded by the router on demand).
	SharedChunks int
	Images       int // public images (png, jpg, webp, avif, svg)
	// ChunkBytes and ImageBytes are average sizes.
	ChunkBytes, ImageBytes int
	// Build is written into every page and the build manifest. Changing it changes every page
	// (a new build id), as a real full rebuild with code changes does.
	Build string
	// Changed lists page indexes whose page chunk differs from the base build ("one change").
	Changed []int
	// Version is text shown on the pages listed in Changed and in their page chunk.
	Version string
	// ChangeLazy makes the pages in Changed also change their lazy-loaded chunk (then a change
	// is 3 files instead of 2).
	ChangeLazy bool
}

// Default is the benchmark's export: about 3,000 files and 40 MB.
func Default() Spec {
	return Spec{Seed: 7, Pages: 420, SharedChunks: 1650, Images: 60, ChunkBytes: 9000, ImageBytes: 300_000, Build: "b1", Version: "v1"}
}

// Small is a quick export for tests (about 60 files).
func Small() Spec {
	return Spec{Seed: 3, Pages: 12, SharedChunks: 20, Images: 4, ChunkBytes: 2000, ImageBytes: 4000, Build: "b1", Version: "v1"}
}

// Export is what Write produced.
type Export struct {
	Files int
	Bytes int64
	// PagePaths are the pages' keys ("index.html", "docs/index.html", "docs/a/b/index.html").
	PagePaths []string
	// PageChunks and LazyChunks are, per page, the keys of its page and lazy chunks.
	PageChunks, LazyChunks []string
}

type writer struct {
	dir   string
	n     int
	bytes int64
	err   error
}

func (w *writer) write(key string, b []byte) {
	if w.err != nil {
		return
	}
	p := filepath.Join(w.dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.err = err
		return
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		w.err = err
		return
	}
	w.n++
	w.bytes += int64(len(b))
}

func hash8(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// filler returns n bytes of base64 text from r (incompressible enough to be realistic).
func filler(r *rand.Rand, n int) string {
	raw := make([]byte, n*3/4+3)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	s := base64.StdEncoding.EncodeToString(raw)
	return s[:min(n, len(s))]
}

func size(r *rand.Rand, avg int) int { return avg/2 + r.IntN(avg+1) }

// PagePath is the key of page i: the home page, the docs index, then nested docs pages.
func PagePath(i int) string {
	switch i {
	case 0:
		return "index.html"
	case 1:
		return "docs/index.html"
	}
	return fmt.Sprintf("docs/section-%02d/page-%03d/index.html", i%20, i)
}

// Write writes the export into dir (which it creates; existing files are overwritten, so
// writing the same Spec twice is a rebuild with new mtimes and identical content).
func Write(dir string, s Spec) (*Export, error) {
	w := &writer{dir: dir}
	r := rand.New(rand.NewPCG(s.Seed, 1))
	changed := map[int]bool{}
	for _, c := range s.Changed {
		changed[c] = true
	}
	ex := &Export{}

	// Framework chunks every page loads. The main chunk defines window.__lazy(src), which
	// loads a chunk on demand as webpack's runtime does.
	framework := []byte("/* framework */ self.__fw=1;\n/*" + filler(r, 40_000) + "*/\n")
	main := []byte(`/* main */ self.__lazy=function(src){return new Promise(function(ok,fail){var s=document.createElement("script");s.src=src;s.onload=function(){ok(self.__lazyLoaded)};s.onerror=function(){fail(new Error("chunk load failed: "+src))};document.head.appendChild(s)})};` + "\n/*" + filler(r, 20_000) + "*/\n")
	fwKey := "_next/static/chunks/framework-" + hash8(framework) + ".js"
	mainKey := "_next/static/chunks/main-" + hash8(main) + ".js"
	w.write(fwKey, framework)
	w.write(mainKey, main)
	css := []byte("body{font-family:sans-serif}\n/*" + filler(r, 30_000) + "*/\n")
	cssKey := "_next/static/css/" + hash8(css) + ".css"
	w.write(cssKey, css)
	buildManifest := []byte("self.__BUILD_MANIFEST={build:" + fmt.Sprintf("%q", s.Build) + "};self.__BUILD_MANIFEST_CB&&self.__BUILD_MANIFEST_CB();")
	w.write("_next/static/"+s.Build+"/_buildManifest.js", buildManifest)
	w.write("_next/static/"+s.Build+"/_ssgManifest.js", []byte("self.__SSG_MANIFEST=new Set([]);self.__SSG_MANIFEST_CB&&self.__SSG_MANIFEST_CB()"))
	for i := range 8 {
		font := []byte("wOF2" + filler(r, 40_000+r.IntN(30_000)))
		w.write(fmt.Sprintf("_next/static/media/font-%d.%s.woff2", i, hash8(font)), font)
	}
	for i := range s.SharedChunks {
		b := []byte(fmt.Sprintf("(self.webpackChunk=self.webpackChunk||[]).push([[%d],{}]);\n/*%s*/\n", i, filler(r, size(r, s.ChunkBytes))))
		w.write(fmt.Sprintf("_next/static/chunks/%d-%s.js", 1000+i, hash8(b)), b)
	}
	for i := range s.Pages {
		key := PagePath(i)
		ver := "base"
		if changed[i] {
			ver = s.Version
		}
		lazyVer := "base"
		if changed[i] && s.ChangeLazy {
			lazyVer = s.Version
		}
		lazy := []byte(fmt.Sprintf("self.__lazyLoaded=%q;\n/*%s*/\n", fmt.Sprintf("page %d lazy %s", i, lazyVer), filler(r, size(r, s.ChunkBytes))))
		lazyKey := fmt.Sprintf("_next/static/chunks/lazy-%d-%s.js", i, hash8(lazy))
		page := []byte(fmt.Sprintf("self.__page=%d;self.__pageVersion=%q;self.__lazySrc=%q;\n/*%s*/\n", i, ver, "/"+lazyKey, filler(r, size(r, s.ChunkBytes))))
		pageKey := fmt.Sprintf("_next/static/chunks/app/page-%d-%s.js", i, hash8(page))
		w.write(lazyKey, lazy)
		w.write(pageKey, page)
		body := fmt.Sprintf(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Zmanim page %d</title>`+
			`<link rel="stylesheet" href="/%s"><script src="/%s" defer></script><script src="/%s" defer></script>`+
			`<script src="/%s" defer></script><script src="/_next/static/%s/_buildManifest.js" defer></script></head>`+
			`<body><main id="content" data-version="%s">Page %d, build %s, version %s</main><template>%s</template></body></html>`,
			i, cssKey, fwKey, mainKey, pageKey, s.Build, ver, i, s.Build, ver, filler(r, size(r, 6000)))
		w.write(key, []byte(body))
		ex.PagePaths = append(ex.PagePaths, key)
		ex.PageChunks = append(ex.PageChunks, pageKey)
		ex.LazyChunks = append(ex.LazyChunks, lazyKey)
	}
	exts := []string{"png", "jpg", "webp", "avif", "svg"}
	for i := range s.Images {
		ext := exts[i%len(exts)]
		w.write(fmt.Sprintf("images/photo-%03d.%s", i, ext), []byte(filler(r, size(r, s.ImageBytes))))
	}
	w.write("404.html", []byte("<!DOCTYPE html><html><body>Not found</body></html>"))
	w.write("favicon.ico", []byte(filler(r, 4000)))
	w.write("robots.txt", []byte("User-agent: *\nAllow: /\n"))
	w.write("site.webmanifest", []byte(`{"name":"Zmanim","icons":[]}`))
	var sm strings.Builder
	sm.WriteString(`<?xml version="1.0" encoding="UTF-8"?><urlset>`)
	for _, p := range ex.PagePaths {
		fmt.Fprintf(&sm, "<url><loc>/%s</loc></url>", strings.TrimSuffix(p, "index.html"))
	}
	sm.WriteString("</urlset>")
	w.write("sitemap.xml", []byte(sm.String()))
	if w.err != nil {
		return nil, fmt.Errorf("write export %s: %w", dir, w.err)
	}
	ex.Files, ex.Bytes = w.n, w.bytes
	return ex, nil
}
