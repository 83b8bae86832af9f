package migrate

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRunbooksCallRealTargets keeps the checklists in migration/ honest: every
// `go tool mage ns:target` they tell an operator to run must exist in magefiles/.
func TestRunbooksCallRealTargets(t *testing.T) {
	t.Parallel()
	var magefiles strings.Builder
	files, _ := filepath.Glob("../../magefiles/*.go")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		magefiles.Write(b)
	}
	docs, _ := filepath.Glob("../../migration/*.md")
	if len(docs) < 2 {
		t.Fatalf("runbooks missing: %v", docs)
	}
	re := regexp.MustCompile("mage ([a-z]+):([a-z]+)")
	seen := 0
	for _, d := range docs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			seen++
			ns, target := upperFirst(m[1]), upperFirst(m[2])
			if !strings.Contains(magefiles.String(), "func ("+ns+") "+target+"(") {
				t.Errorf("%s tells to run %q, but magefiles/ defines no func (%s) %s", filepath.Base(d), m[0], ns, target)
			}
		}
	}
	if seen < 5 {
		t.Fatalf("runbooks name only %d targets", seen)
	}
}

func upperFirst(s string) string { return strings.ToUpper(s[:1]) + s[1:] }
