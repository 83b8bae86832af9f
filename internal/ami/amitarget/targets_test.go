package amitarget

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/ami"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

func TestReadOptions(t *testing.T) {
	r := opts.FromMap(map[string]string{"ZOPS_AMI_KEEP": "0", "ZOPS_DRY_RUN": "maybe"})
	ReadOptions(r)
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "ZOPS_AMI_KEEP") || !strings.Contains(err.Error(), "ZOPS_DRY_RUN") {
		t.Fatalf("bad values accepted: %v", err)
	}
	r = opts.FromMap(map[string]string{"ZOPS_AMI_DELETE": "ami-1,ami-2", "ZOPS_DRY_RUN": "1"})
	o := ReadOptions(r)
	if r.Err() != nil || len(o.Delete) != 2 || !o.DryRun || o.Keep != 3 {
		t.Fatalf("options = %+v, %v", o, r.Err())
	}
}

// TestTargetsRefuseTheTwin: on the local twin every EC2 image target stops before calling
// anything, saying what to do.
func TestTargetsRefuseTheTwin(t *testing.T) {
	t.Setenv("ZOPS_ENV", "local")
	for name, target := range map[string]func(context.Context, *bytes.Buffer) error{
		"ami":       func(ctx context.Context, b *bytes.Buffer) error { return BuildTarget(ctx, b) },
		"ami:list":  func(ctx context.Context, b *bytes.Buffer) error { return ListTarget(ctx, b) },
		"ami:prune": func(ctx context.Context, b *bytes.Buffer) error { return PruneTarget(ctx, b) },
	} {
		var out bytes.Buffer
		err := target(context.Background(), &out)
		if !errors.Is(err, ErrTwin) || !strings.Contains(err.Error(), "ZOPS_ENV=prod") {
			t.Errorf("%s on the twin: %v", name, err)
		}
	}
}

// TestBuildRefusesWithoutCredentials: `mage ami` for prod with no AWS credentials stops
// before packer runs, nothing changed.
func TestBuildRefusesWithoutCredentials(t *testing.T) {
	home := t.TempDir()
	for k, v := range map[string]string{
		"ZOPS_ENV": "prod", "HOME": home, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
	} {
		t.Setenv(k, v)
	}
	os.Unsetenv("AWS_PROFILE")
	var out bytes.Buffer
	err := BuildTarget(context.Background(), &out)
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("err = %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("printed before refusing: %q", out.String())
	}
}

func TestBuildVars(t *testing.T) {
	env, err := config.LoadWith(config.Options{Env: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BuildVars(env, Options{}, config.RepoRoot()); err == nil || !strings.Contains(err.Error(), "ZOPS_AMI_FILES_DIR") {
		t.Fatalf("no staging dir: %v", err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "packer", "recipe"), 0o755)
	os.WriteFile(filepath.Join(root, "packer", "recipe", "run.sh"), []byte("echo\n"), 0o755)
	v, err := BuildVars(env, Options{FilesDir: root, Keep: 3}, root)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"environment": env.Name, "instance_profile": "zmanim-" + env.Name + "-ami-builder", "staging_bucket": env.Buckets.Releases,
		"staging_prefix": "ami-staging/", "image_parameter": env.Instance.AMIParameter, "keep_images": "3", "image_name": Family,
	} {
		if v[k] != want {
			t.Errorf("%s = %q, want %q", k, v[k], want)
		}
	}
	h1 := v["recipe_hash"]
	os.WriteFile(filepath.Join(root, "packer", "recipe", "run.sh"), []byte("echo changed\n"), 0o755)
	if h2, _ := RecipeHash(filepath.Join(root, "packer", "recipe")); h2 == h1 || len(h1) != 16 {
		t.Errorf("recipe hash %q -> %q", h1, h2)
	}
}

// TestPruneRefusesInUse: ZOPS_AMI_DELETE naming an image in use deletes nothing.
func TestPruneRefusesInUse(t *testing.T) {
	f := &fakeImages{}
	var out bytes.Buffer
	err := Prune(context.Background(), f, f, ami.Family{Name: Family, Parameter: "/p"}, Options{Delete: []string{"ami-old", "ami-live"}, Keep: 3}, &out)
	if !errors.Is(err, ami.ErrImageInUse) || !strings.Contains(err.Error(), "nothing was deleted") || f.deleted != 0 {
		t.Fatalf("err = %v, deleted %d", err, f.deleted)
	}
	out.Reset()
	if err := Prune(context.Background(), f, f, ami.Family{Name: Family, Parameter: "/p"}, Options{Delete: []string{"ami-old"}, DryRun: true}, &out); err != nil || f.deleted != 0 || !strings.Contains(out.String(), "would delete ami-old") {
		t.Fatalf("dry run: %v %d %s", err, f.deleted, out.String())
	}
}
