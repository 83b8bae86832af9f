package boxbuild

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// A failing recipe script fails the chroot build with the script's output, and nothing is left:
// no root, nothing mounted under it.
func TestChrootBuildFailingRecipe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chroot, mounts)")
	}
	if _, err := os.Stat(filepath.Join(CacheDir(), "base-bookworm-"+runtime.GOARCH, "etc", "debian_version")); err != nil && !testenv.Required() {
		t.Skip("no cached base root (go tool mage ami:local with ZOPS_AMI_VIA=chroot builds it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	recipe := filepath.Join(dir, "recipe")
	os.MkdirAll(recipe, 0o755)
	os.WriteFile(filepath.Join(recipe, "run.sh"), []byte("#!/bin/bash\necho configuring the box\necho 'E: Unable to locate package postgis-nonexistent' >&2\nexit 100\n"), 0o755)
	staging := filepath.Join(dir, "files")
	os.MkdirAll(staging, 0o755)
	root := filepath.Join(dir, "root")
	err := ChrootBuild(ctx, root, staging, Options{Recipe: recipe})
	if err == nil || !strings.Contains(err.Error(), "Unable to locate package postgis-nonexistent") || !strings.Contains(err.Error(), "exit status 100") {
		t.Fatalf("err = %v, want the recipe's output and exit status", err)
	}
	if _, serr := os.Stat(root); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("the half-built root %s is left behind", root)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), root) {
		t.Fatalf("something is still mounted under %s", root)
	}
}
