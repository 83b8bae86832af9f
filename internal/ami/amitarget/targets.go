// Package amitarget is the entry of the ami, ami:list and ami:prune targets: it reads their
// options, refuses clearly where they cannot run (the local twin has no EC2 images; AWS needs
// credentials), and calls packercli (the zops-ec2 build) and internal/ami (list, prune). It is
// apart from internal/ami because the Packer plugin imports internal/ami and must not pull in
// the configuration and client code.
package amitarget

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shtetl/zmanim-ops/internal/ami"
	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/awsx/ec2x"
	"github.com/shtetl/zmanim-ops/internal/boxbuild"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/opts"
	"github.com/shtetl/zmanim-ops/internal/packercli"
	"github.com/shtetl/zmanim-ops/internal/stacks"
)

// Family is the image family the box template builds (image_name).
const Family = "zmanim-box"

// StagingPrefix is where builds stage files in the releases bucket: the only prefix the ami
// role of infra/ may use (AmiStagingPrefix in infra/github_oidc.go, another module).
const StagingPrefix = "ami-staging/"

// ErrTwin refuses the EC2 image targets on the local twin.
var ErrTwin = errors.New("the local twin has no EC2 images")

// Options are the ZOPS_AMI_* options.
type Options struct {
	FilesDir        string   // ZOPS_AMI_FILES_DIR: staging directory (binaries, units) for the build
	InstanceProfile string   // ZOPS_AMI_INSTANCE_PROFILE (default zmanim-<env>-ami-builder)
	SubnetID        string   // ZOPS_AMI_SUBNET_ID (default: the default VPC's)
	Keep            int      // ZOPS_AMI_KEEP: images kept by prune (default 3)
	Delete          []string // ZOPS_AMI_DELETE: delete exactly these images instead of pruning
	DryRun          bool     // ZOPS_DRY_RUN: show what prune would delete
}

// ReadOptions reads the ami targets' options.
func ReadOptions(r *opts.Reader) Options {
	return Options{
		FilesDir:        r.String("ZOPS_AMI_FILES_DIR", ""),
		InstanceProfile: r.String("ZOPS_AMI_INSTANCE_PROFILE", ""),
		SubnetID:        r.String("ZOPS_AMI_SUBNET_ID", ""),
		Keep:            r.PositiveInt("ZOPS_AMI_KEEP", 3),
		Delete:          r.List("ZOPS_AMI_DELETE"),
		DryRun:          r.Bool("ZOPS_DRY_RUN", false),
	}
}

// setup reads options and the environment and refuses the twin and missing credentials
// before anything is called.
func setup(ctx context.Context, target string) (Options, *config.Env, error) {
	r := opts.New()
	o := ReadOptions(r)
	if err := r.Err(); err != nil {
		return o, nil, err
	}
	env, err := config.Load()
	if err != nil {
		return o, nil, err
	}
	if env.IsTwin() {
		return o, nil, fmt.Errorf("%s: %w (kumo has no image API): run it against AWS with ZOPS_ENV=prod; the local image is built and booted by ami:local", target, ErrTwin)
	}
	if err := stacks.CheckCredentials(ctx, env); err != nil {
		return o, nil, fmt.Errorf("%s: %w", target, err)
	}
	return o, env, nil
}

// BuildVars are the template variables of the zops-ec2 build for env.
func BuildVars(env *config.Env, o Options, root string) (map[string]string, error) {
	if o.FilesDir == "" {
		return nil, errors.New("no staging directory: set ZOPS_AMI_FILES_DIR to the directory with the box's binaries and units (ami:local prepares one)")
	}
	files, err := filepath.Abs(o.FilesDir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(files); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("ZOPS_AMI_FILES_DIR %s is not a directory", files)
	}
	profile := o.InstanceProfile
	if profile == "" {
		profile = "zmanim-" + env.Name + "-ami-builder"
	}
	recipe, err := RecipeHash(filepath.Join(root, "packer", "recipe"))
	if err != nil {
		return nil, err
	}
	return map[string]string{
		"files_dir":        files,
		"region":           env.Region,
		"environment":      env.Name,
		"instance_profile": profile,
		"subnet_id":        o.SubnetID,
		"staging_bucket":   env.Buckets.Releases,
		"staging_prefix":   StagingPrefix,
		"image_name":       Family,
		"image_parameter":  env.Instance.AMIParameter,
		"keep_images":      fmt.Sprint(o.Keep),
		"version":          gitOut(root, "describe", "--tags", "--always", "--dirty"),
		"commit":           gitOut(root, "rev-parse", "HEAD"),
		"recipe_hash":      recipe,
	}, nil
}

// BuildTarget is `mage ami`: the zops-ec2 build of packer/box.pkr.hcl.
func BuildTarget(ctx context.Context, out io.Writer) error {
	o, env, err := setup(ctx, "ami")
	if err != nil {
		return err
	}
	if o.FilesDir == "" {
		// The box's binaries for the instance's architecture, staged as ami:local stages them.
		o.FilesDir = filepath.Join(config.RepoRoot(), ".state", "box", "files-"+env.Instance.Arch)
		fmt.Fprintf(out, "ami: staging linux/%s binaries and units in %s\n", env.Instance.Arch, o.FilesDir)
		if err := boxbuild.StageArch(ctx, o.FilesDir, gitOut(config.RepoRoot(), "describe", "--tags", "--always", "--dirty"), env.Instance.Arch, out); err != nil {
			return fmt.Errorf("ami: %w", err)
		}
	}
	vars, err := BuildVars(env, o, config.RepoRoot())
	if err != nil {
		return fmt.Errorf("ami: %w", err)
	}
	fmt.Fprintf(out, "ami: building %s in %s from %s (recipe %s)\n", Family, env.Region, vars["files_dir"], vars["recipe_hash"])
	id, err := packercli.Build(ctx, packercli.BuildOptions{Template: packercli.TemplatePath(), Only: "zops-ec2.box", Vars: vars, Progress: out})
	if err != nil {
		return fmt.Errorf("ami: %w", err)
	}
	fmt.Fprintf(out, "ami: %s published to %s\n", id, env.Instance.AMIParameter)
	return nil
}

func clients(ctx context.Context, env *config.Env) (ami.EC2API, ami.ParameterAPI, error) {
	c, err := awsx.New(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	return ec2x.New(c), c.SSM, nil
}

// ListTarget is `mage ami:list`.
func ListTarget(ctx context.Context, out io.Writer) error {
	_, env, err := setup(ctx, "ami:list")
	if err != nil {
		return err
	}
	e, p, err := clients(ctx, env)
	if err != nil {
		return err
	}
	fam := ami.Family{Name: Family, Parameter: env.Instance.AMIParameter}
	l, err := ami.List(ctx, e, p, fam)
	if err != nil {
		return fmt.Errorf("ami:list: %w", err)
	}
	return ami.WriteTable(out, l, fam)
}

// PruneTarget is `mage ami:prune`.
func PruneTarget(ctx context.Context, out io.Writer) error {
	o, env, err := setup(ctx, "ami:prune")
	if err != nil {
		return err
	}
	e, p, err := clients(ctx, env)
	if err != nil {
		return err
	}
	return Prune(ctx, e, p, ami.Family{Name: Family, Parameter: env.Instance.AMIParameter}, o, out)
}

// Prune deletes the images ZOPS_AMI_DELETE names (all refused if one is in use) or, without
// it, those beyond the newest Keep that nothing uses.
func Prune(ctx context.Context, e ami.EC2API, p ami.ParameterAPI, fam ami.Family, o Options, out io.Writer) error {
	l, err := ami.List(ctx, e, p, fam)
	if err != nil {
		return fmt.Errorf("ami:prune: %w", err)
	}
	plan := ami.PlanPrune(l, o.Keep)
	if len(o.Delete) > 0 {
		if plan, err = ami.PlanDelete(l, o.Delete); err != nil {
			return fmt.Errorf("ami:prune: %w; nothing was deleted", err)
		}
	}
	if err := ami.Apply(ctx, e, plan, o.DryRun, out); err != nil {
		return fmt.Errorf("ami:prune: %w", err)
	}
	fmt.Fprintf(out, "ami:prune: %d image(s) %s\n", len(plan.Delete), map[bool]string{true: "would be deleted (dry run)", false: "deleted"}[o.DryRun])
	return nil
}

// RecipeHash identifies the recipe an image was built from: a hash over packer/recipe's files.
func RecipeHash(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("recipe hash: %w", err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("recipe hash: %w", err)
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:8]), nil
}

func gitOut(dir string, args ...string) string {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
