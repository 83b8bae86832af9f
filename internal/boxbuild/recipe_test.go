package boxbuild

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// The recipe is shellcheck clean (scripts and the files it installs).
func TestRecipeShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		if testenv.Required() {
			t.Fatal("shellcheck not found (apt-get install shellcheck)")
		}
		t.Skip("shellcheck not installed")
	}
	dir := RecipeDir()
	files, _ := filepath.Glob(filepath.Join(dir, "*.sh"))
	files = append(files, filepath.Join(dir, "files", "zmanim-dbinit"))
	cmd := exec.Command(sc, append([]string{"-x", "-P", "SCRIPTDIR"}, files...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

// run.sh runs every step script, in name order, and the README documents each.
func TestRunShRunsEveryStep(t *testing.T) {
	dir := RecipeDir()
	steps, _ := filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.sh"))
	for i := range steps {
		steps[i] = filepath.Base(steps[i])
	}
	run, err := os.ReadFile(filepath.Join(dir, "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`for s in ([^;]+);`).FindSubmatch(run)
	if m == nil {
		t.Fatal("run.sh has no `for s in ...;` step list")
	}
	listed := strings.Fields(string(m[1]))
	if !slices.Equal(listed, steps) {
		t.Fatalf("run.sh runs %v, the recipe has %v", listed, steps)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(steps, "distro.sh", "contract.sh", "lib.sh") {
		if !strings.Contains(string(readme), s) {
			t.Errorf("packer/recipe/README does not mention %s", s)
		}
	}
}

// Distribution differences live in distro.sh only: no other script names a package manager or
// a distribution path.
func TestDistroDifferencesInOneFile(t *testing.T) {
	dir := RecipeDir()
	files, _ := filepath.Glob(filepath.Join(dir, "*.sh"))
	bad := regexp.MustCompile(`\b(apt-get|dnf|yum|/usr/lib/postgresql|/usr/pgsql-|valkey|redis-server\.service)\b`)
	for _, f := range files {
		if filepath.Base(f) == "distro.sh" || filepath.Base(f) == "contract.sh" {
			continue
		}
		b, _ := os.ReadFile(f)
		if loc := bad.Find(b); loc != nil {
			t.Errorf("%s names %q: distribution differences belong in distro.sh", filepath.Base(f), loc)
		}
	}
}

// VerifyUnits catches a unit whose program is missing from the root.
func TestVerifyUnitsOnBuiltRoot(t *testing.T) {
	root := os.Getenv("ZOPS_TEST_BOX_BUILT_ROOT")
	if root == "" {
		t.Skip("set ZOPS_TEST_BOX_BUILT_ROOT to a root ami:local built (.state/box/root); ami:local runs this check itself")
	}
	n, err := VerifyUnits(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d units clean", n)
}
