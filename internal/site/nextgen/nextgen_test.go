package nextgen

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteIsDeterministicAndChangeIsLocal(t *testing.T) {
	t.Parallel()
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	s := Small()
	ea, err := Write(a, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(b, s); err != nil {
		t.Fatal(err)
	}
	s.Changed, s.Version = []int{3}, "v2"
	if _, err := Write(c, s); err != nil {
		t.Fatal(err)
	}
	files := func(dir string) map[string]string {
		m := map[string]string{}
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				body, _ := os.ReadFile(p)
				m[filepath.ToSlash(rel)] = string(body)
			}
			return nil
		})
		return m
	}
	fa, fb, fc := files(a), files(b), files(c)
	if len(fa) != ea.Files || len(fa) != len(fb) {
		t.Fatalf("files: %d, %d, export says %d", len(fa), len(fb), ea.Files)
	}
	for k, v := range fa {
		if fb[k] != v {
			t.Fatalf("%s differs between two writes of the same spec", k)
		}
	}
	if _, ok := fa["index.html"]; !ok {
		t.Fatal("no index.html")
	}
	var diff []string
	for k, v := range fc {
		if fa[k] != v {
			diff = append(diff, k)
		}
	}
	// Page 3's HTML and its new page chunk.
	if len(diff) != 2 {
		t.Fatalf("one change touched %d files, want 2: %v", len(diff), diff)
	}
}
