package packercli

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// PluginSourceDir is the plugin's module directory, packer/ in the repository.
func PluginSourceDir() string { return filepath.Join(config.RepoRoot(), "packer") }

// TemplatePath is the box template, packer/box.pkr.hcl.
func TemplatePath() string { return filepath.Join(PluginSourceDir(), "box.pkr.hcl") }

// pluginDeps are the main module's packages the plugin imports (through its replace of the
// main module): their sources are part of the plugin's hash.
var pluginDeps = []string{"internal/ami"}

// sourceHash hashes what the plugin binary is built from: non-test Go files, go.mod and
// go.sum (not the recipe, templates or tests) of dir and of the given extra directories,
// plus the Go version that compiles them.
func sourceHash(dir string, extra ...string) (string, error) {
	var files []string
	for _, e := range extra {
		fs, _ := filepath.Glob(filepath.Join(e, "*.go"))
		for _, f := range fs {
			if !strings.HasSuffix(f, "_test.go") {
				files = append(files, f)
			}
		}
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != dir && (name == "recipe" || name == "testdata" || name == "test-fixtures" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if (strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) || name == "go.mod" || name == "go.sum" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash plugin sources in %s: %w", dir, err)
	}
	if len(files) == 0 {
		return "", fmt.Errorf("no plugin sources in %s", dir)
	}
	sort.Strings(files)
	h := sha256.New()
	fmt.Fprintf(h, "go=%s\n", runtime.Version())
	for _, f := range files {
		rel, err := filepath.Rel(dir, f)
		if err != nil {
			rel = f
		}
		fmt.Fprintf(h, "%s\n", rel)
		fh, err := os.Open(f)
		if err != nil {
			return "", fmt.Errorf("hash plugin sources: %w", err)
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", fmt.Errorf("hash plugin sources: %w", err)
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:12]), nil
}
