package deps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// fake is a machine where the programs in have are installed and apt-get installs packages
// by adding their programs.
type fake struct {
	have  map[string]bool
	calls [][]string
	fail  bool
}

func (f *fake) system(root, debian bool) System {
	return System{
		Root: root, Debian: debian,
		Look: func(p string) bool { return f.have[p] },
		Glob: func(p string) bool { return f.have[p] },
		Run: func(_ context.Context, _ io.Writer, argv ...string) error {
			f.calls = append(f.calls, argv)
			if f.fail {
				return errors.New("exit status 100")
			}
			if argv[1] == "install" {
				for _, pkg := range argv[4:] {
					n := Needs[pkg]
					for _, p := range append(n.Programs, n.Files...) {
						f.have[p] = true
					}
				}
			}
			return nil
		},
		Out: io.Discard,
	}
}

// installed returns a fake machine with every package of target installed except skip.
func installed(target string, skip ...string) *fake {
	f := &fake{have: map[string]bool{}}
	for _, name := range Targets[target] {
		if contains(skip, name) {
			continue
		}
		for _, p := range append(Needs[name].Programs, Needs[name].Files...) {
			f.have[p] = true
		}
	}
	return f
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestEnsure(t *testing.T) {
	tests := []struct {
		name      string
		fake      *fake
		root, deb bool
		wantErr   []string // substrings; nil: success
		wantCalls []string // argv joined
	}{
		{"all installed: nothing runs", installed("release"), false, false, nil, nil},
		{"not root: the one apt-get line, nothing runs", installed("release", "qemu-user-static"), false, true,
			[]string{"qemu-aarch64-static (qemu-user-static)", "nothing was built", "sudo sh -c 'apt-get update && apt-get install -y qemu-user-static'"}, nil},
		{"not root, two missing: one line, sorted", installed("release", "qemu-user-static", "redis-server"), false, true,
			[]string{"sudo sh -c 'apt-get update && apt-get install -y qemu-user-static redis-server'"}, nil},
		{"not Debian: names what to install", installed("release", "qemu-user-static"), true, false,
			[]string{"not Debian", "qemu-aarch64-static: the release's smoke test", "Debian package qemu-user-static"}, nil},
		{"root on Debian: update once, then install", installed("test", "chromium", "shellcheck"), true, true, nil,
			[]string{"apt-get update -qq", "apt-get install -y -qq chromium shellcheck"}},
		{"apt-get fails: the error says so", func() *fake { f := installed("release", "git"); f.fail = true; return f }(), true, true,
			[]string{"`apt-get update` failed", "check the network"}, []string{"apt-get update -qq"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			updated = false // each case is a fresh process
			target := "release"
			if strings.Contains(tc.name, "update once") {
				target = "test"
			}
			err := tc.fake.system(tc.root, tc.deb).Ensure(context.Background(), target)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, ErrMissing) {
					t.Fatalf("Ensure = %v, want ErrMissing", err)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
			}
			var calls []string
			for _, c := range tc.fake.calls {
				calls = append(calls, strings.Join(c, " "))
			}
			if strings.Join(calls, "\n") != strings.Join(tc.wantCalls, "\n") {
				t.Errorf("ran %q, want %q", calls, tc.wantCalls)
			}
		})
	}
}

func TestUpdateOncePerProcess(t *testing.T) {
	updated = false
	f := installed("test", "chromium", "awscli")
	s := f.system(true, true)
	if err := s.Ensure(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ensure(context.Background(), "bench:site"); err != nil {
		t.Fatal(err)
	}
	var updates int
	for _, c := range f.calls {
		if c[1] == "update" {
			updates++
		}
	}
	if updates != 1 || len(f.calls) != 3 {
		t.Errorf("calls %q: want one update and two installs", f.calls)
	}
}

func TestUnknownTarget(t *testing.T) {
	if err := installed("release").system(true, true).Ensure(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), "deps.Targets") {
		t.Fatalf("Ensure(nope) = %v", err)
	}
}

func TestTableIsConsistent(t *testing.T) {
	for target, names := range Targets {
		for _, n := range names {
			need, ok := Needs[n]
			if !ok {
				t.Errorf("%s needs unknown package %q", target, n)
			}
			if need.Package != n || need.Why == "" || len(need.Programs)+len(need.Files) == 0 {
				t.Errorf("Needs[%q] = %+v: want Package = key, a Why and a proof", n, need)
			}
		}
	}
}

// TestAsNobody runs Ensure as a real non-root user on this machine (with a PATH lacking the
// program): it must print the apt-get line and install nothing.
func TestAsNobody(t *testing.T) {
	if os.Getenv("DEPS_CHILD") == "1" {
		err := Ensure(context.Background(), "release")
		fmt.Println(err)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to nobody")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not found")
	}
	// The test binary lives in a 0700 directory of root's; nobody needs its own copy.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "deps-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "deps.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", bin, "-test.run=^TestAsNobody$")
	// No qemu, git or Redis in PATH (PostgreSQL is found by its versioned path when installed).
	cmd.Env = []string{"DEPS_CHILD=1", "PATH=" + dir}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, w := range []string{"missing programs for release", "nothing was built", "sudo sh -c 'apt-get update && apt-get install -y git ", " qemu-user-static redis-server redis-tools'"} {
		if !bytes.Contains(out, []byte(w)) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// alwaysThere are programs every Debian system has (Essential or required packages) and Go.
var alwaysThere = map[string]bool{"go": true, "sh": true, "bash": true, "mount": true, "umount": true,
	"chroot": true, "unshare": true, "nsenter": true, "setpriv": true, "tar": true, "cp": true, "env": true, "apt-get": true, "dpkg": true, "true": true, "false": true, "sleep": true, "cat": true, "echo": true}

// pkgTargets says which targets run the code of a directory (non-test files); test files are
// run by `test`.
var pkgTargets = map[string][]string{
	"internal/backup":                 {"backup"},
	"internal/twin":                   {"twin:up"},
	"internal/twin/daemon":            {"twin:up"},
	"internal/migrate":                {"migrate"},
	"internal/pgtool":                 {"backup", "migrate"},
	"internal/release":                {"release", "bench:release"},
	"internal/site":                   {"site", "bench:site"},
	"internal/stacks":                 {"infra"},
	"internal/fresh":                  {"bench:fresh"},
	"internal/testrun":                {"test"},
	"internal/loadtest":               {"loadtest", "bench:loadgen"},
	"internal/tools":                  {"twin:up"},
	"internal/restic":                 {"backup"},
	"internal/box":                    {"twin:up"},
	"internal/deps":                   {"twin:up"},
	"packer/builder/local":            {"ami:local"},
	"internal/boxbuild":               {"ami:local", "bench:box"},
	"internal/boxproof":               {"ami:local", "bench:box"},
	"internal/nsboot":                 {"ami:local", "bench:box"},
	"internal/recovery":               {"bench:recovery"},
	"internal/fakeec2":                {"ami:local", "bench:box", "bench:recovery"},
	"internal/ami/amitarget":          {"ami:ec2", "ami:local"},
	"internal/backup/cmd/zops-backup": {"backup"},
}

// TestEveryExecIsCovered finds every program the code runs by name (exec.Command,
// exec.CommandContext, exec.LookPath, pgtool.FindProgram with a literal) and checks that the
// table of a target running that code installs it.
func TestEveryExecIsCovered(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	provides := func(target string) map[string]bool {
		m := map[string]bool{}
		for _, n := range Targets[target] {
			for _, p := range append(Needs[n].Programs, Needs[n].Provides...) {
				m[p] = true
			}
		}
		return m
	}
	var problems []string
	found := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".state", "node_modules", "testdata", "cdk.out", "tools":
				if path != root {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		for _, call := range programsRun(t, path) {
			found++
			if alwaysThere[call.prog] {
				continue
			}
			var targets []string
			if strings.HasSuffix(path, "_test.go") {
				targets = []string{"test"}
			} else if ts, ok := pkgTargets[filepath.Dir(rel)]; ok {
				targets = ts
			} else {
				problems = append(problems, fmt.Sprintf("%s:%d runs %s, but deps_test.pkgTargets does not say which targets run %s", rel, call.line, call.prog, filepath.Dir(rel)))
				continue
			}
			covered := false
			for _, tg := range targets {
				covered = covered || provides(tg)[call.prog]
			}
			if !covered {
				problems = append(problems, fmt.Sprintf("%s:%d runs %s, which no package of %v provides: add it to deps.Targets", rel, call.line, call.prog, targets))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		t.Logf("%d program uses checked", found)
	}
	if found < 20 {
		t.Fatalf("found only %d exec calls: the scan is broken", found)
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

type progCall struct {
	prog string
	line int
}

// programsRun returns the literal program names a Go file runs or looks up.
func programsRun(t *testing.T, path string) []progCall {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var out []progCall
	ast.Inspect(f, func(n ast.Node) bool {
		// A program named by its absolute path (the browser test's /usr/bin/chromium).
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, _ := strconv.Unquote(lit.Value)
			for _, dir := range []string{"/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"} {
				if name := strings.TrimPrefix(s, dir); name != s && name != "" && !strings.ContainsAny(name, "/ *$") {
					out = append(out, progCall{name, fset.Position(lit.Pos()).Line})
				}
			}
			return true
		}
		if call, ok := n.(*ast.CallExpr); ok {
			if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "FindProgram" && len(call.Args) > 1 {
				if lit, ok := call.Args[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, progCall{s, fset.Position(call.Pos()).Line})
				}
				return true
			}
		}
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		arg := -1
		switch x.Name + "." + sel.Sel.Name {
		case "exec.Command", "exec.LookPath":
			arg = 0
		case "exec.CommandContext", "pgtool.FindProgram":
			arg = 1
		}
		if arg < 0 || len(call.Args) <= arg {
			return true
		}
		if lit, ok := call.Args[arg].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil && !strings.Contains(s, "/") {
				out = append(out, progCall{s, fset.Position(call.Pos()).Line})
			}
		}
		return true
	})
	return out
}
