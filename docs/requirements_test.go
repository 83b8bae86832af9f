package docs

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var (
	// A row of requirements.md: "| trap 2 | ..." or "| 7.5.2 | ...".
	keyRowRE = regexp.MustCompile(`(?m)^\| (trap [0-9]+|7\.[0-9]+(?:\.[0-9]+)?) \|`)
	// "trap 1", "Traps 1 and 4", "trap 1/2".
	trapRE = regexp.MustCompile(`(?i)\btraps?\s+#?([0-9]+(?:\s*(?:,|/|\+|&|and|or)\s*[0-9]+)*)`)
	// "story 7.5", "stories 7.6, 7.7", "Story 7.4.6 / 7.9.4".
	storyRE = regexp.MustCompile(`(?i)\bstor(?:y|ies)\s+(7\.[0-9]+(?:\.[0-9]+)?(?:\s*(?:,|/|\+|&|and|or)\s*7\.[0-9]+(?:\.[0-9]+)?)*)`)
	// A bare criterion "7.4.3", not part of a longer dotted number (a version, an address).
	bareRE = regexp.MustCompile(`(?:^|[^0-9A-Za-z.])(7\.[0-9]{1,2}\.[0-9]{1,2})(?:$|[^0-9.]|\.(?:$|[^0-9]))`)
	// Test names: TestStory7_1_2_3_X is 7.1.2 and 7.1.3; TestStory7_4_5_and_7_9_3_X is 7.4.5 and 7.9.3.
	testNameRE = regexp.MustCompile(`TestStory7_([0-9]+(?:_[0-9]+)*(?:_and_7_[0-9]+(?:_[0-9]+)*)*)`)
	numRE      = regexp.MustCompile(`7\.[0-9]+(?:\.[0-9]+)?|[0-9]+`)
)

// skipDirs are never scanned: VCS data, local state, generated and downloaded trees.
var skipDirs = map[string]bool{".git": true, ".state": true, "node_modules": true, "cdk.out": true, "reports": true, "vendor": true, "dist": true, "bin": true}

func TestEveryCitedRequirementIsDefined(t *testing.T) {
	b, err := os.ReadFile("requirements.md")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, m := range keyRowRE.FindAllStringSubmatch(string(b), -1) {
		defined[m[1]] = true
	}
	for i := 1; i <= 7; i++ {
		if k := fmt.Sprintf("trap %d", i); !defined[k] {
			t.Errorf("requirements.md does not define %s", k)
		}
	}

	cited := map[string][]string{} // key -> files citing it
	err = filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if p == filepath.Join("..", "docs", "requirements.md") || p == filepath.Join("..", "docs", "requirements_test.go") {
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() || info.Size() > 4<<20 {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0 {
			return nil // binary
		}
		for _, k := range citations(string(b)) {
			cited[k] = append(cited[k], strings.TrimPrefix(p, "../"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cited) < 20 {
		t.Fatalf("found only %d cited keys: is the scan looking at the repository?", len(cited))
	}
	keys := make([]string, 0, len(cited))
	for k := range cited {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !defined[k] {
			t.Errorf("%s is cited (%s) but not defined in docs/requirements.md", k, strings.Join(cited[k], ", "))
		}
	}
	t.Logf("%d distinct keys cited, %d defined", len(cited), len(defined))
}

// citations returns the requirement keys text cites ("trap 2", "7.5", "7.5.2").
func citations(text string) []string {
	var out []string
	for _, m := range trapRE.FindAllStringSubmatch(text, -1) {
		for _, n := range numRE.FindAllString(m[1], -1) {
			out = append(out, "trap "+n)
		}
	}
	for _, m := range storyRE.FindAllStringSubmatch(text, -1) {
		out = append(out, numRE.FindAllString(m[1], -1)...)
	}
	for _, m := range bareRE.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	for _, m := range testNameRE.FindAllStringSubmatch(text, -1) {
		for i, part := range strings.Split(m[1], "_and_") {
			if i > 0 {
				part = strings.TrimPrefix(part, "7_")
			}
			f := strings.Split(part, "_")
			if len(f) == 1 {
				out = append(out, "7."+f[0])
			}
			for _, c := range f[1:] {
				out = append(out, "7."+f[0]+"."+c)
			}
		}
	}
	return out
}

func TestCitations(t *testing.T) {
	t.Parallel()
	tests := []struct{ text, want string }{
		{"// 7.7.2 + trap 1: a private integration", "7.7.2,trap 1"},
		{"see traps 1 and 4, and Trap 2", "trap 1,trap 4,trap 2"},
		{"stories 7.6, 7.7 and story 7.4.6 / 7.9.4", "7.6,7.7,7.4.6,7.9.4,7.4.6,7.9.4"},
		{"func TestStory7_1_2_3_StacksForProd(", "7.1.2,7.1.3"},
		{"func TestStory7_4_5_and_7_9_3_LeastPrivilegeRole(", "7.4.5,7.9.3"},
		{"postgis 3.7.1.2, go1.7.1.1, v7.1.2, 127.0.0.1, 17.3.1", ""},
		{"(7.1.5 without stored secrets).", "7.1.5"},
	}
	for _, tt := range tests {
		got := citations(tt.text)
		sort.Strings(got)
		want := strings.Split(tt.want, ",")
		if tt.want == "" {
			want = nil
		}
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("citations(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
