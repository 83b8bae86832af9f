package release

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// gitRepo makes a repository with one commit holding a go.mod and testdata/hello.
func gitRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
			"GIT_AUTHOR_DATE=2026-11-01T10:00:00Z", "GIT_COMMITTER_DATE=2026-11-01T10:00:00Z")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	src, err := os.ReadFile("testdata/hello/main.go")
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.MkdirAll(filepath.Join(dir, "hello"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.22\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "hello", "main.go"), src, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("/.state/\n"), 0o644))
	run("init", "-q", "-b", "main")
	run("add", ".")
	run("commit", "-q", "-m", "one")
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadSource(t *testing.T) {
	dir := gitRepo(t)
	ctx := context.Background()
	s, err := ReadSource(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Dirty || len(s.Commit) != 40 || s.Version != s.Commit[:10] || !s.CommitTime.Equal(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("clean source = %+v", s)
	}
	if _, err := ReadSource(ctx, dir, "bad/version"); err == nil {
		t.Fatal("a version with '/' was accepted")
	}
	// Ignored files (the twin's state) do not make the tree dirty; others do.
	must(t, os.MkdirAll(filepath.Join(dir, ".state"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, ".state", "x"), []byte("x"), 0o644))
	if s, _ := ReadSource(ctx, dir, ""); s.Dirty {
		t.Fatal("an ignored file made the tree dirty")
	}
	must(t, os.WriteFile(filepath.Join(dir, "new.txt"), []byte("x"), 0o644))
	s, err = ReadSource(ctx, dir, "")
	if err != nil || !s.Dirty || !strings.Contains(s.Version, "-dirty.") {
		t.Fatalf("dirty source = %+v, %v", s, err)
	}
	if _, err := ReadSource(ctx, t.TempDir(), ""); err == nil || !strings.Contains(err.Error(), "git clone") {
		t.Fatalf("not a repository: %v", err)
	}
}

func TestCheckTree(t *testing.T) {
	dir := gitRepo(t)
	must(t, os.WriteFile(filepath.Join(dir, "hello", "main.go"), []byte("package main\nfunc main(){}\n"), 0o644))
	src, _ := ReadSource(context.Background(), dir, "v1")
	tests := []struct {
		name     string
		src      Source
		allow    bool
		wantSkip bool
		wantErr  error
	}{
		{"clean", Source{}, false, false, nil},
		{"dirty refused", src, false, false, ErrDirty},
		{"dirty allowed", src, true, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &CheckTree{Src: tc.src, Allow: tc.allow, Dir: dir}
			if c.String() != "check that the git tree is clean" {
				t.Errorf("String() = %q", c.String())
			}
			skip, why := c.Skip(context.Background())
			if skip != tc.wantSkip || (skip && why != "ZOPS_ALLOW_DIRTY=1") {
				t.Fatalf("Skip = %v %q", skip, why)
			}
			if skip {
				return
			}
			err := c.Run(context.Background())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Run = %v, want %v", err, tc.wantErr)
			}
			if err != nil && (!strings.Contains(err.Error(), "hello/main.go") || !strings.Contains(err.Error(), "ZOPS_ALLOW_DIRTY=1")) {
				t.Fatalf("error does not list the file and the fix: %v", err)
			}
		})
	}
}

func TestBuildIsReproducibleAndCached(t *testing.T) {
	dir := gitRepo(t)
	ctx := context.Background()
	src, err := ReadSource(ctx, dir, "v1.2.3")
	must(t, err)
	targets := []Binary{{Name: "zmanim-api", Package: "./hello", Arch: "arm64"}, {Name: "zmanim-api", Package: "./hello", Arch: "amd64"}}
	b1 := &Build{Src: src, Binaries: targets, OutDir: filepath.Join(dir, ".state", "a")}
	b2 := &Build{Src: src, Binaries: targets, OutDir: filepath.Join(dir, ".state", "b")}
	if got := b1.String(); got != "build v1.2.3 "+src.Commit[:10]+" (linux/arm64, linux/amd64)" {
		t.Errorf("String() = %q", got)
	}
	if skip, _ := b1.Skip(ctx); skip {
		t.Fatal("nothing built yet, but Skip said skip")
	}
	must(t, b1.Run(ctx))
	must(t, b2.Run(ctx))
	if len(b1.Artifacts) != 2 {
		t.Fatalf("artifacts %+v", b1.Artifacts)
	}
	for i := range b1.Artifacts {
		a, b := b1.Artifacts[i], b2.Artifacts[i]
		if a.SHA256 != b.SHA256 || a.Size != b.Size {
			t.Fatalf("two builds of one commit differ for %s: %s vs %s", a.Arch, a.SHA256, b.SHA256)
		}
		x, _ := os.ReadFile(a.Path)
		if err := onbox.CheckELF(x, a.Arch); err != nil {
			t.Fatalf("%s: %v", a.Arch, err)
		}
		if !bytes.Contains(x, []byte("v1.2.3")) || !bytes.Contains(x, []byte(src.Commit)) || !bytes.Contains(x, []byte("2026-11-01T10:00:00Z")) {
			t.Fatalf("%s lacks the injected version, commit or commit date", a.Path)
		}
		if bytes.Contains(x, []byte(dir)) {
			t.Fatalf("%s contains the build directory: -trimpath missing", a.Path)
		}
	}
	// Native: the injected values are what --version prints.
	if a, ok := onbox.Find(b1.Artifacts, "zmanim-api", runtime.GOARCH); ok {
		out, err := exec.Command(a.Path).Output()
		if err != nil || !strings.Contains(string(out), "zmanim-api v1.2.3 (commit "+src.Commit+", built 2026-11-01T10:00:00Z)") {
			t.Fatalf("run: %q %v", out, err)
		}
	}
	// A repeat of the same clean commit is skipped, with the artifacts filled in.
	b3 := &Build{Src: src, Binaries: targets, OutDir: b1.OutDir}
	skip, why := b3.Skip(ctx)
	if !skip || !strings.Contains(why, "already built") || len(b3.Artifacts) != 2 || b3.Artifacts[0].SHA256 != b1.Artifacts[0].SHA256 {
		t.Fatalf("repeat build: skip=%v %q %+v", skip, why, b3.Artifacts)
	}
	// Another version, or a dirty tree, is not skipped.
	other := src
	other.Version = "v1.2.4"
	if skip, _ := (&Build{Src: other, Binaries: targets, OutDir: b1.OutDir}).Skip(ctx); skip {
		t.Fatal("another version reused the build")
	}
	dirty := src
	dirty.Dirty = true
	if skip, _ := (&Build{Src: dirty, Binaries: targets, OutDir: b1.OutDir}).Skip(ctx); skip {
		t.Fatal("a dirty tree reused the build")
	}
	// A build error names the package and platform.
	bad := &Build{Src: src, Binaries: []Binary{{Name: "x", Package: "./nope", Arch: "arm64"}}, OutDir: filepath.Join(dir, ".state", "c")}
	if err := bad.Run(ctx); err == nil || !strings.Contains(err.Error(), "go build ./nope for linux/arm64") {
		t.Fatalf("bad package: %v", err)
	}
}
