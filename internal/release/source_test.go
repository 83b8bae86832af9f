package release

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/onbox"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

// apiRepo makes a second git repository, the way the real API lives in its own: module
// example.com/realapi, the API at ./cmd/api, tagged v2.3.4. It returns the directory and a
// function running git in it.
func apiRepo(t *testing.T) (string, func(args ...string) string) {
	t.Helper()
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
			"GIT_AUTHOR_DATE=2026-11-02T10:00:00Z", "GIT_COMMITTER_DATE=2026-11-02T10:00:00Z")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	src, err := os.ReadFile("testdata/realapi/main.go")
	must(t, err)
	must(t, os.MkdirAll(filepath.Join(dir, "cmd", "api"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/realapi\n\ngo 1.22\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "cmd", "api", "main.go"), src, 0o644))
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-q", "-m", "api one")
	git("tag", "v2.3.4")
	return dir, git
}

// TestAPISourceFromAnotherRepository releases (build and smoke test, the steps that read the
// source) the API from a second repository, given as a checkout and as a git URL with a ref,
// while zops-box still comes from this repository's tree.
func TestAPISourceFromAnotherRepository(t *testing.T) {
	ctx := context.Background()
	apiDir, git := apiRepo(t)
	toolkit := gitRepo(t) // stands in for this repository: ./hello plays zops-box
	cache := t.TempDir()

	buildAndSmoke := func(t *testing.T, s APISource, wantVersion string) Source {
		t.Helper()
		dir, err := s.Resolve(ctx, toolkit, nil)
		must(t, err)
		src, err := ReadSource(ctx, dir, "")
		must(t, err)
		if src.Version != wantVersion || src.Dirty {
			t.Fatalf("source %s: version %q dirty %v, want %s clean", s, src.Version, src.Dirty, wantVersion)
		}
		b := &Build{Src: src, OutDir: t.TempDir(), Binaries: []Binary{
			{Name: "zmanim-api", Package: s.Package, Arch: runtime.GOARCH},
			{Name: "zops-box", Package: "./hello", Arch: runtime.GOARCH, Dir: toolkit, Rev: "toolkit-rev"},
		}}
		must(t, b.Run(ctx))
		api, ok := onbox.Find(b.Artifacts, "zmanim-api", runtime.GOARCH)
		if !ok {
			t.Fatal("no API artifact")
		}
		envFile := filepath.Join(t.TempDir(), "api.env")
		must(t, os.WriteFile(envFile, nil, 0o600))
		sm := &Smoke{Version: src.Version, EnvFile: envFile, Binary: func() (onbox.Artifact, bool) { return api, true }}
		must(t, sm.Run(ctx)) // --version and /health of the other repository's binary
		out, err := exec.Command(filepath.Join(b.OutDir, "linux-"+runtime.GOARCH, "zops-box")).Output()
		if err != nil || !strings.HasPrefix(string(out), "zmanim-api "+src.Version+" ") {
			t.Fatalf("zops-box (from the toolkit tree) = %q, %v", out, err)
		}
		return src
	}

	t.Run("checkout", func(t *testing.T) {
		buildAndSmoke(t, APISource{Location: apiDir, Package: "./cmd/api"}, "v2.3.4")
	})
	t.Run("git URL and ref", func(t *testing.T) {
		url := "file://" + apiDir
		s := APISource{Location: url, Ref: "v2.3.4", Package: "./cmd/api", CacheDir: cache}
		first := buildAndSmoke(t, s, "v2.3.4")
		// A new commit on main, fetched by ref into the same cache clone.
		must(t, os.WriteFile(filepath.Join(apiDir, "NEWS"), []byte("two\n"), 0o644))
		git("add", ".")
		git("commit", "-q", "-m", "api two")
		head := git("rev-parse", "HEAD")
		s.Ref = "main"
		second := buildAndSmoke(t, s, "v2.3.4-1-g"+head[:10])
		if second.Commit != head || first.Commit == second.Commit || first.Dir != second.Dir {
			t.Fatalf("fetch by ref: first %s in %s, second %s in %s, want %s in the same clone", first.Commit, first.Dir, second.Commit, second.Dir, head)
		}
	})

	bad := []struct {
		name string
		s    APISource
		want string
	}{
		{"missing directory", APISource{Location: filepath.Join(t.TempDir(), "nope")}, "is not a directory"},
		{"not a checkout", APISource{Location: t.TempDir()}, "is not a git checkout"},
		{"ref with a directory", APISource{Location: apiDir, Ref: "main"}, "only for a git URL"},
		{"unknown ref", APISource{Location: "file://" + apiDir, Ref: "no-such-ref", CacheDir: cache}, "fetch no-such-ref"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.Resolve(ctx, toolkit, nil)
			if !errors.Is(err, ErrBadSource) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Resolve = %v, want ErrBadSource with %q", err, tc.want)
			}
		})
	}
}

func TestAPISourceOptions(t *testing.T) {
	for _, tc := range []struct {
		loc  string
		git  bool
		name string
	}{
		{"", false, "this repository"},
		{"../shtetl-api", false, "../shtetl-api"},
		{"https://github.com/shtetl/api.git", true, "https://github.com/shtetl/api.git @ HEAD"},
		{"https://x-access-token:ghs_secret@github.com/shtetl/api.git", true, "https://xxxxx@github.com/shtetl/api.git @ HEAD"},
		{"git@github.com:shtetl/api.git", true, "git@github.com:shtetl/api.git @ HEAD"},
		{"file:///srv/api", true, "file:///srv/api @ HEAD"},
	} {
		s := APISource{Location: tc.loc}
		if s.IsGitURL() != tc.git || s.String() != tc.name {
			t.Errorf("%q: git %v name %q, want %v %q", tc.loc, s.IsGitURL(), s.String(), tc.git, tc.name)
		}
	}

	t.Setenv("ZOPS_API_SOURCE", "")
	t.Setenv("ZOPS_API_REF", "main")
	t.Setenv("ZOPS_API_PACKAGE", "cmd/api")
	r := opts.New()
	ReadOptions(r)
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), "ZOPS_API_REF") || !strings.Contains(err.Error(), "ZOPS_API_PACKAGE") {
		t.Fatalf("bad options: %v", err)
	}
	t.Setenv("ZOPS_API_SOURCE", "git@github.com:shtetl/api.git")
	t.Setenv("ZOPS_API_PACKAGE", "./cmd/api")
	r = opts.New()
	o := ReadOptions(r)
	if err := r.Err(); err != nil || o.API != (APISource{Location: "git@github.com:shtetl/api.git", Ref: "main", Package: "./cmd/api"}) {
		t.Fatalf("options = %+v, %v", o.API, err)
	}

	// The plan builds the API from its source with its package, and zops-box from this
	// repository, stamped with this repository's commit.
	env, err := config.LoadWith(config.Options{Env: "local", Path: "/dev/null"})
	must(t, err)
	o.Env, o.Root, o.toolkitRev = env, "/toolkit", "abc"
	p, _ := Plan(o, Source{Dir: "/api", Version: "v1", Commit: "c"}, nil, nil, "")
	var b *Build
	for _, st := range p.Steps {
		if bs, ok := st.(*Build); ok {
			b = bs
		}
	}
	if b == nil || b.Binaries[0].Package != "./cmd/api" || b.Binaries[0].Dir != "" {
		t.Fatalf("API target = %+v", b.Binaries)
	}
	box := b.Binaries[len(b.Binaries)-1]
	if box.Name != "zops-box" || box.Dir != "/toolkit" || box.Rev != "abc" {
		t.Fatalf("zops-box target = %+v", box)
	}
}
