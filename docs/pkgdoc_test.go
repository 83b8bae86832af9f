package docs

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageStartsWithItsDoc keeps the house rule: every package of the repository
// (main module and nested modules) has a doc comment "Package x ..." ("Command x ..." for a
// program; magefiles' is mage's help header).
func TestEveryPackageStartsWithItsDoc(t *testing.T) {
	dirs := map[string]bool{}
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (skipDirs[d.Name()] || d.Name() == "testdata" || (strings.HasPrefix(d.Name(), ".") && p != "..")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			dirs[filepath.Dir(p)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 30 {
		t.Fatalf("found only %d package directories: is the scan looking at the repository?", len(dirs))
	}
	for dir := range dirs {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		for name, pkg := range pkgs {
			doc := ""
			for fname, f := range pkg.Files {
				if f.Doc == nil || strings.Contains(fname, "_gen") {
					continue
				}
				doc += f.Doc.Text()
			}
			want := "Package " + name + " "
			if name == "main" {
				want = "Command "
			}
			rel := strings.TrimPrefix(filepath.ToSlash(dir), "../")
			if rel == "magefiles" || rel == ".." {
				continue // mage's help header; the //go:build ignore bootstrap
			}
			if !strings.Contains(doc, want) {
				t.Errorf("%s: no doc comment starting %q", rel, want)
			}
		}
	}
}
