package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeLayoutIsCompleteAndTrue checks the README's Layout section against the tree: every
// top-level folder, binary under cmd/ and package directly under internal/ is listed, and every
// internal/ or cmd/ path it lists exists.
func TestReadmeLayoutIsCompleteAndTrue(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "## Layout")
	if !ok {
		t.Fatal("README has no Layout section")
	}
	block := regexp.MustCompile("(?s)```\n(.*?)```").FindStringSubmatch(after)
	if block == nil {
		t.Fatal("README's Layout section has no code block")
	}
	layout := block[1]
	listed := func(path string) bool {
		return regexp.MustCompile(`(?m)(^|[ ,;:(])` + regexp.QuoteMeta(path) + `(/|\b)`).MatchString(layout)
	}

	var want []string
	top, err := os.ReadDir("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range top {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") || e.Name() == ".github" || e.Name() == ".ci" {
			want = append(want, e.Name())
		}
	}
	for _, dir := range []string{"cmd", "internal"} {
		entries, err := os.ReadDir(filepath.Join("..", dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				want = append(want, dir+"/"+e.Name())
			}
		}
	}
	for _, p := range want {
		if !listed(p) {
			t.Errorf("README Layout does not list %s", p)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)(?:^|[ ,;:(])((?:internal|cmd)/[a-z0-9_-]+(?:/[a-z0-9_-]+)?)`).FindAllStringSubmatch(layout, -1) {
		if _, err := os.Stat(filepath.Join("..", m[1])); err != nil {
			t.Errorf("README Layout lists %s, which does not exist", m[1])
		}
	}
}
