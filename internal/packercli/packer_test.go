package packercli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests run the real packer 1.9.4 with the real plugin (both built into the tool cache
// on first use: packer ~11 min cold, the plugin ~1 min) and, for builds, real debootstrap
// (cached after the first ~60 s). Not with -short.

func realPacker(t *testing.T) *Packer {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the real packer: not with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	p, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func abs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestValidateTemplate: packer validate accepts packer/box.pkr.hcl for both builders.
func TestValidateTemplate(t *testing.T) {
	p := realPacker(t)
	vars := map[string]string{"files_dir": abs(t, "testdata/files"), "staging_bucket": "zmanim-prod-releases"}
	if err := p.Validate(context.Background(), TemplatePath(), "", vars); err != nil {
		t.Fatal(err)
	}
	// A bad value is refused with packer's explanation.
	err := p.Validate(context.Background(), TemplatePath(), "zops-ec2.box", map[string]string{"files_dir": "x", "staging_bucket": "b", "image_parameter": "ami-id"})
	var ve *ValidateError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), `image_parameter "ami-id" is not an SSM parameter name`) {
		t.Fatalf("bad image_parameter: %v", err)
	}
}

func needRootAndDebootstrap(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the local builder needs root")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		if os.Getenv("ZOPS_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("debootstrap is not installed")
		}
		t.Skip("debootstrap not installed")
	}
}

// TestBuildLocal: packer build -only=zops-local.box with a fixture recipe returns the root,
// in which the recipe ran with the template's environment.
func TestBuildLocal(t *testing.T) {
	p := realPacker(t)
	needRootAndDebootstrap(t)
	out := filepath.Join(t.TempDir(), "root")
	var progress strings.Builder
	res, err := p.Build(context.Background(), BuildOptions{
		Template: TemplatePath(),
		Only:     "zops-local.box",
		Vars: map[string]string{
			"files_dir": abs(t, "testdata/files"), "recipe_dir": abs(t, "testdata/recipe-ok"),
			"output_dir": out, "version": "v9.9.9", "recipe_env": `{"ZOPS_EXTRA":"x y"}`,
		},
		Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	t.Cleanup(func() { os.RemoveAll(out) })
	if len(res.Artifacts) != 1 || res.Artifacts[0].ID != out || res.Artifacts[0].BuilderID != "zops.local" {
		t.Fatalf("artifacts = %+v", res.Artifacts)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "etc/zops-fixture")); string(b) != "debian v9.9.9 x y\n" {
		t.Errorf("recipe environment: %q", b)
	}
	if _, err := os.Stat(filepath.Join(out, "usr/local/bin/hello")); err != nil {
		t.Errorf("staged file not installed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "tmp/zops")); !os.IsNotExist(err) {
		t.Error("/tmp/zops left in the image")
	}
	if !strings.Contains(progress.String(), "fixture recipe: distro=debian") {
		t.Errorf("progress lacks the recipe's output:\n%s", progress.String())
	}
}

// TestBuildLocalFailingRecipe: the build fails with the script's output; the chroot is
// unmounted, its daemon stopped and the root removed.
func TestBuildLocalFailingRecipe(t *testing.T) {
	p := realPacker(t)
	needRootAndDebootstrap(t)
	out := filepath.Join(t.TempDir(), "root")
	_, err := p.Build(context.Background(), BuildOptions{
		Template: TemplatePath(),
		Only:     "zops-local.box",
		Vars:     map[string]string{"files_dir": abs(t, "testdata/files"), "recipe_dir": abs(t, "testdata/recipe-fail"), "output_dir": out},
	})
	var be *BuildError
	if !errors.As(err, &be) || !errors.Is(err, ErrBuildFailed) {
		t.Fatalf("err = %v", err)
	}
	if be.Build != "zops-local.box" || !strings.Contains(err.Error(), "Unable to locate package postgresql-99") || !strings.Contains(err.Error(), "100") {
		t.Errorf("error lacks the failing script's output:\n%v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("root left behind: %v", err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), out) {
		t.Errorf("still mounted under %s", out)
	}
	if b, _ := exec.Command("pgrep", "-f", "^sleep 600$").Output(); len(b) > 0 {
		// Other things may run `sleep 600`; only fail if one is rooted in our chroot.
		for _, pid := range strings.Fields(string(b)) {
			if r, _ := os.Readlink("/proc/" + pid + "/root"); strings.HasPrefix(r, out) {
				t.Errorf("daemon %s still runs in the chroot", pid)
			}
		}
	}
}
