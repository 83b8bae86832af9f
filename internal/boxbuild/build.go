// Package boxbuild builds the box image locally: the staging directory the Packer template
// uploads (files_dir: host-arch binaries, units, the first API release) and the root itself,
// through `packer build -only zops-local.box` with the project's plugin (packercli). The same
// recipe (packer/recipe/run.sh) builds the AL2023 image on EC2. A plain debootstrap + chroot
// path runs the same recipe when asked (Via "chroot"), for machines without the Packer build.
package boxbuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/packercli"
	"github.com/shtetl/zmanim-ops/internal/tools"
)

// Options of a local build.
type Options struct {
	// Work is the directory for the staging dir and the root (<work>/files, <work>/root).
	Work string
	// Version of the first API release baked into the image.
	Version string
	// Via is "packer" (default) or "chroot".
	Via string
	Out io.Writer
	// Recipe is the recipe directory (default packer/recipe; tests use a failing one).
	Recipe string
}

// Result of a build.
type Result struct {
	Root, Staging string
	StageSecs     float64
	BuildSecs     float64
}

func (o Options) logf(format string, args ...any) {
	if o.Out != nil {
		fmt.Fprintf(o.Out, "ami:local: "+format+"\n", args...)
	}
}

// Build stages the files and builds the root; an existing root in Work is replaced.
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.Version == "" {
		o.Version = "v0.0.0-box"
	}
	res := &Result{Staging: filepath.Join(o.Work, "files"), Root: filepath.Join(o.Work, "root")}
	t := time.Now()
	if err := Stage(ctx, res.Staging, o.Version, o.Out); err != nil {
		return nil, err
	}
	res.StageSecs = time.Since(t).Seconds()
	o.logf("staged %s in %.1fs", res.Staging, res.StageSecs)
	if err := removeRoot(res.Root); err != nil {
		return nil, err
	}
	t = time.Now()
	var err error
	switch o.Via {
	case "", "packer":
		o.logf("packer build -only zops-local.box (plugin packer-plugin-zops, Packer 1.9.4)")
		var root string
		root, err = packercli.Build(ctx, packercli.BuildOptions{
			Template: packercli.TemplatePath(),
			Only:     "zops-local.box",
			Vars:     map[string]string{"files_dir": res.Staging, "output_dir": res.Root, "recipe_dir": o.recipe()},
			Progress: o.Out,
		})
		if err == nil && root != res.Root {
			res.Root = root
		}
	case "chroot":
		err = ChrootBuild(ctx, res.Root, res.Staging, o)
	default:
		err = fmt.Errorf("ZOPS_AMI_VIA=%q: want packer or chroot", o.Via)
	}
	if err != nil {
		return nil, fmt.Errorf("build the box root: %w", err)
	}
	res.BuildSecs = time.Since(t).Seconds()
	o.logf("root %s built in %.1fs", res.Root, res.BuildSecs)
	return res, nil
}

func (o Options) recipe() string {
	if o.Recipe != "" {
		return o.Recipe
	}
	return RecipeDir()
}

// RecipeDir is packer/recipe in the repository.
func RecipeDir() string { return filepath.Join(config.RepoRoot(), "packer", "recipe") }

// Stage fills dir with what the recipe installs, for the host's architecture (the local box):
//
//	bin/zops-box bin/zops-backup bin/restic   the box's binaries
//	api/VERSION api/<version>/zmanim-api        the first API release
//	systemd/*                                   deploy/systemd and deploy/systemd/backup
func Stage(ctx context.Context, dir, version string, out io.Writer) error {
	return StageArch(ctx, dir, version, runtime.GOARCH, out)
}

// StageArch is Stage for another architecture (arm64 for the EC2 image): the binaries are
// cross-compiled, restic from its pinned module in tools/restic.
func StageArch(ctx context.Context, dir, version, arch string, out io.Writer) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for _, d := range []string{"bin", "api/" + version, "systemd"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	repo := config.RepoRoot()
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s -X main.date=%s", version, gitCommit(repo), time.Now().UTC().Format(time.RFC3339))
	builds := []struct{ pkg, out string }{
		{"./cmd/zops-box", "bin/zops-box"},
		{"./cmd/zops-backup", "bin/zops-backup"},
		{"./examples/zmanim-api", "api/" + version + "/zmanim-api"},
	}
	for _, b := range builds {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("stage: go build %s: %w\n%s", b.pkg, err, o)
		}
	}
	restic, err := resticFor(ctx, arch)
	if err != nil {
		return fmt.Errorf("stage: restic: %w", err)
	}
	if err := copyFile(restic, filepath.Join(dir, "bin", "restic"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "api", "VERSION"), []byte(version+"\n"), 0o644); err != nil {
		return err
	}
	for _, src := range []string{filepath.Join(repo, "deploy", "systemd"), filepath.Join(repo, "deploy", "systemd", "backup")} {
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dir, "systemd", e.Name()), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// resticFor returns the pinned restic for arch: the host's from internal/tools, another
// architecture's cross-compiled once into the tool cache.
func resticFor(ctx context.Context, arch string) (string, error) {
	if arch == runtime.GOARCH {
		return tools.Ensure(ctx, "restic")
	}
	v, err := tools.Version("restic")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(tools.CacheDir(), "bin", "restic-"+v+"-linux-"+arch)
	if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
		return bin, nil
	}
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, tools.Known["restic"].Package)
	cmd.Dir = filepath.Join(config.RepoRoot(), "tools", "restic")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if o, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("build restic %s for linux/%s: %w\n%s", v, arch, err, o)
	}
	return bin, os.Rename(tmp, bin)
}

func gitCommit(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "none"
	}
	return strings.TrimSpace(string(out))
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// removeRoot deletes a previous root, refusing while anything is still mounted in it (a
// crashed boot): deleting through a bind of /dev would be a disaster.
func removeRoot(root string) error {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err == nil {
		for _, l := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(l); len(f) > 4 && (f[4] == root || strings.HasPrefix(f[4], root+"/")) {
				return fmt.Errorf("%s still has %s mounted: unmount it (umount -R %s) first", root, f[4], root)
			}
		}
	}
	if err := os.RemoveAll(root); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// CacheDir is where the chroot path keeps its debootstrapped base and the apt archives.
func CacheDir() string { return filepath.Join(tools.CacheDir(), "box") }

// Base is what the chroot path debootstraps (the same include list as the template's
// debian_include default).
var Base = []string{"systemd", "systemd-sysv", "dbus"}

// EnsureBase returns the cached debootstrapped root with systemd (building it once, ~1-2 min):
// the chroot build path starts from a copy, and the nsboot tests boot it.
func EnsureBase(ctx context.Context, out io.Writer) (string, error) {
	return ensureBase(ctx, Options{Out: out})
}

func ensureBase(ctx context.Context, o Options) (string, error) {
	dir := filepath.Join(CacheDir(), "base-bookworm-"+runtime.GOARCH)
	if _, err := os.Stat(filepath.Join(dir, "etc", "debian_version")); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	// The packer zops-local builder caches the same debootstrap (same include list): copy it.
	cands, _ := filepath.Glob(filepath.Join(tools.CacheDir(), "debootstrap", "bookworm-"+runtime.GOARCH+"-*"))
	for _, c := range cands {
		if _, err := os.Stat(filepath.Join(c, "lib", "systemd", "systemd")); err != nil {
			continue
		}
		o.logf("base root: copying packer's cached debootstrap %s", c)
		if out, err := exec.CommandContext(ctx, "cp", "-a", c, tmp).CombinedOutput(); err != nil {
			return "", fmt.Errorf("copy %s: %w: %s", c, err, out)
		}
		return dir, os.Rename(tmp, dir)
	}
	o.logf("debootstrap bookworm into %s (once, ~1-2 min)", dir)
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(Base, ","), "bookworm", tmp, "http://deb.debian.org/debian")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("debootstrap: %w\n%s", err, tail(string(b), 20))
	}
	return dir, os.Rename(tmp, dir)
}

// chrootScript provisions the root the way the Packer template does: recipe and files under
// /tmp/zops, run.sh as root with ZOPS_DISTRO=debian, in a private mount namespace (proc, sys,
// dev, a private dev/shm; all gone when it exits). The apt archives are a cache outside the
// root so a rebuild downloads nothing.
const chrootScript = `set -e
R=$1 APT=$2
mount --make-rprivate /
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
mount --bind "$APT" "$R/var/cache/apt/archives"
cp /etc/resolv.conf "$R/etc/resolv.conf"
chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  ZOPS_DISTRO=debian ZOPS_FILES=/tmp/zops/files ZOPS_KEEP_APT_CACHE=1 bash /tmp/zops/recipe/run.sh
`

// ChrootBuild builds root from the cached base with the recipe, as the packer zops-local
// builder does; a failing recipe fails it with the recipe's last lines, and the half-built root
// is removed (nothing stays mounted: the mounts lived in the recipe's own mount namespace).
func ChrootBuild(ctx context.Context, root, staging string, o Options) (err error) {
	base, err := ensureBase(ctx, o)
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", base, root).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the base root: %w: %s", err, out)
	}
	defer func() {
		if err != nil {
			if rerr := removeRoot(root); rerr != nil {
				err = fmt.Errorf("%w; and the half-built root stays: %v", err, rerr)
			}
		}
	}()
	apt := filepath.Join(CacheDir(), "apt-archives-"+runtime.GOARCH)
	if err := os.MkdirAll(filepath.Join(apt, "partial"), 0o755); err != nil {
		return err
	}
	zops := filepath.Join(root, "tmp", "zops")
	for src, dst := range map[string]string{o.recipe(): "recipe", staging: "files"} {
		d := filepath.Join(zops, dst)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if out, err := exec.CommandContext(ctx, "cp", "-a", src+"/.", d+"/").CombinedOutput(); err != nil {
			return fmt.Errorf("copy %s into the root: %w: %s", src, err, out)
		}
	}
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--pid", "--fork", "--kill-child", "sh", "-c", chrootScript, "box-recipe", root, apt)
	var buf strings.Builder
	w := io.Writer(&buf)
	if o.Out != nil {
		w = io.MultiWriter(&buf, o.Out)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("recipe failed: %w\n--- last lines ---\n%s", err, tail(buf.String(), 30))
	}
	return os.RemoveAll(zops)
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
