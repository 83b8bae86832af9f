package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// Source is the git state a release is built from.
type Source struct {
	Dir        string    // repository root
	Commit     string    // full commit hash
	CommitTime time.Time // committer date: the build date, so rebuilds are byte-identical
	Version    string    // ZOPS_VERSION or git describe
	Dirty      bool      // uncommitted changes (tracked or untracked, .gitignore respected)
}

// ErrDirty means the working tree has uncommitted changes.
var ErrDirty = errors.New("the git working tree has uncommitted changes")

// ReadSource inspects the repository at dir. version overrides `git describe`.
func ReadSource(ctx context.Context, dir, version string) (Source, error) {
	s := Source{Dir: dir}
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
			}
			return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	var err error
	if s.Commit, err = git("rev-parse", "HEAD"); err != nil {
		return s, fmt.Errorf("read commit (is %s a git clone with a commit?): %w", dir, err)
	}
	ct, err := git("log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return s, err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return s, fmt.Errorf("read commit time: %q: %w", ct, err)
	}
	s.CommitTime = time.Unix(sec, 0).UTC()
	st, err := git("status", "--porcelain")
	if err != nil {
		return s, err
	}
	s.Dirty = st != ""
	s.Version = version
	if s.Version == "" {
		if s.Version, err = git("describe", "--tags", "--always", "--abbrev=10"); err != nil {
			return s, err
		}
		if s.Dirty {
			// A dirty build is not reproducible: give it its own version so it can never be
			// confused with (or block) the release of the commit.
			s.Version += "-dirty." + time.Now().UTC().Format("20060102T150405")
		}
	}
	if err := onbox.ValidVersion(s.Version); err != nil {
		return s, err
	}
	return s, nil
}

// Binary is one binary to build for one platform.
type Binary struct {
	Name    string // installed name (zmanim-api, zops-box)
	Package string // Go package, relative to the source root (Dir, else Src.Dir)
	Arch    string // GOARCH; GOOS is always linux
	// Dir builds this target from another tree than the release's source: zops-box always
	// comes from this repository, also when the API comes from its own (see APISource). Rev
	// is that tree's commit, which stamps the output instead of the source's.
	Dir, Rev string
}

// Platform is "linux/<arch>".
func (t Binary) Platform() string { return "linux/" + t.Arch }

// Build cross-compiles the targets: CGO off, -trimpath, -buildvcs=false, version, commit and
// date (the commit time) injected, so two builds of one commit are byte-identical. Go's
// content-addressed build cache makes a rebuild of unchanged code a link step; a stamp per
// output (the inputs' hash) lets a repeat of the same clean commit skip even that.
type Build struct {
	Src      Source
	Binaries []Binary // what to build: each binary for its platform
	OutDir   string   // <root>/.state/release/dist/<version>
	Go       string   // go command (default "go")
	Out      io.Writer

	Artifacts []onbox.Artifact // filled by Run (or Skip, when cached)
}

func (b *Build) String() string {
	var plats []string
	seen := map[string]bool{}
	for _, t := range b.Binaries {
		if !seen[t.Platform()] {
			seen[t.Platform()] = true
			plats = append(plats, t.Platform())
		}
	}
	return fmt.Sprintf("build %s %s (%s)", b.Src.Version, b.Src.short(), strings.Join(plats, ", "))
}

func (s Source) short() string {
	if len(s.Commit) > 10 {
		return s.Commit[:10]
	}
	return s.Commit
}

// LDFlags are the linker flags of a release build.
func (b *Build) LDFlags() string {
	return fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s -X main.date=%s",
		b.Src.Version, b.Src.Commit, b.Src.CommitTime.Format(time.RFC3339))
}

func (b *Build) output(t Binary) string {
	return filepath.Join(b.OutDir, "linux-"+t.Arch, t.Name)
}

// stamp is the hash of everything that determines an output of a clean tree.
func (b *Build) stamp(t Binary) string {
	h := sha256.New()
	fmt.Fprintln(h, b.Src.Commit, b.Src.Version, runtime.Version(), t.Package, t.Arch, b.LDFlags(), t.Dir, t.Rev)
	return hex.EncodeToString(h.Sum(nil))
}

// Skip skips the build when every output exists with a matching stamp (same clean commit,
// version, Go and flags). A dirty tree always builds.
func (b *Build) Skip(ctx context.Context) (bool, string) {
	if b.Src.Dirty {
		return false, ""
	}
	var arts []onbox.Artifact
	for _, t := range b.Binaries {
		st, err := os.ReadFile(b.output(t) + ".stamp")
		if err != nil || strings.TrimSpace(string(st)) != b.stamp(t) {
			return false, ""
		}
		a, err := describe(t, b.output(t))
		if err != nil {
			return false, ""
		}
		arts = append(arts, a)
	}
	b.Artifacts = arts
	return true, "already built from this commit (" + b.OutDir + ")"
}

// Run builds every target.
func (b *Build) Run(ctx context.Context) error {
	goBin := b.Go
	if goBin == "" {
		goBin = "go"
	}
	b.Artifacts = nil
	for _, t := range b.Binaries {
		out := b.output(t)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		_ = os.Remove(out + ".stamp")
		t0 := time.Now()
		cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-buildvcs=false", "-ldflags", b.LDFlags(), "-o", out, t.Package)
		cmd.Dir = b.Src.Dir
		if t.Dir != "" {
			cmd.Dir = t.Dir
		}
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+t.Arch, "GOFLAGS=-mod=readonly")
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s for %s: %w\n%s", t.Package, t.Platform(), err, strings.TrimSpace(string(o)))
		}
		a, err := describe(t, out)
		if err != nil {
			return err
		}
		if b.Out != nil {
			fmt.Fprintf(b.Out, "  %-10s %-12s %6.1f MB  sha256 %s  %s\n", t.Name, t.Platform(), float64(a.Size)/1e6, a.SHA256[:16], round(time.Since(t0)))
		}
		if !b.Src.Dirty {
			if err := os.WriteFile(out+".stamp", []byte(b.stamp(t)+"\n"), 0o644); err != nil {
				return err
			}
		}
		b.Artifacts = append(b.Artifacts, a)
	}
	return nil
}

func describe(t Binary, path string) (onbox.Artifact, error) {
	sum, size, err := onbox.FileSHA256(path)
	if err != nil {
		return onbox.Artifact{}, err
	}
	return onbox.Artifact{Name: t.Name, OS: "linux", Arch: t.Arch, Path: path, SHA256: sum, Size: size}, nil
}
