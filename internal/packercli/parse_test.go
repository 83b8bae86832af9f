package packercli

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func parseFile(t *testing.T, name string) *parseResult {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var progress strings.Builder
	r, err := parse(f, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "zops-local.box:") {
		t.Errorf("progress not forwarded: %q", progress.String())
	}
	return r
}

func TestParseArtifacts(t *testing.T) {
	t.Parallel()
	r := parseFile(t, "build-ok.txt")
	want := []Artifact{{Build: "zops-local.box", BuilderID: "zops.local", ID: "/work/.state/box/root", String: "Debian root in /work/.state/box/root"}}
	if got := r.artifacts(); !reflect.DeepEqual(got, want) {
		t.Errorf("artifacts = %+v, want %+v", got, want)
	}
	if len(r.errors) != 0 {
		t.Errorf("errors = %v", r.errors)
	}
}

func TestParseBuildError(t *testing.T) {
	t.Parallel()
	r := parseFile(t, "build-fail.txt")
	err := r.buildError("box.pkr.hcl", errors.New("exit status 1"), "")
	var be *BuildError
	if !errors.As(err, &be) || !errors.Is(err, ErrBuildFailed) {
		t.Fatalf("err = %#v", err)
	}
	if be.Build != "zops-local.box" || !strings.Contains(be.Message, "non-zero exit status: 1") {
		t.Errorf("build %q message %q", be.Build, be.Message)
	}
	msg := err.Error()
	for _, want := range []string{"Unable to locate package nosuch, giving up", "10-packages.sh failed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks the provisioner's output %q:\n%s", want, msg)
		}
	}
}

func TestParseFailureBeforeBuild(t *testing.T) {
	t.Parallel()
	r, err := parse(strings.NewReader("1,,ui,error,Error: Failed to initialize build \"zops-local.box\"\\n\\nunknown builder\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	be := r.buildError("box.pkr.hcl", errors.New("exit status 1"), "")
	if !strings.Contains(be.Error(), "unknown builder") {
		t.Errorf("error = %v", be)
	}
}

func TestBuildLine(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, build, text string }{
		{"==> zops-ec2.box: Launching", "zops-ec2.box", "Launching"},
		{"    zops-local.box: E: x: y", "zops-local.box", "E: x: y"},
		{"Build 'x' errored after 3 seconds: boom", "", ""},
	}
	for _, tt := range tests {
		b, txt, _ := buildLine(tt.in)
		if b != tt.build || txt != tt.text {
			t.Errorf("buildLine(%q) = %q, %q", tt.in, b, txt)
		}
	}
}

func TestCommonArgsSorted(t *testing.T) {
	t.Parallel()
	got := commonArgs("zops-local.box", map[string]string{"b": "2", "a": "x=y"})
	want := []string{"-only=zops-local.box", "-var", "a=x=y", "-var", "b=2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
}

func TestSourceHashIgnoresRecipeAndTests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(p, s string) {
		os.MkdirAll(dir+"/"+p[:strings.LastIndex(p, "/")+1], 0o755)
		os.WriteFile(dir+"/"+p, []byte(s), 0o644)
	}
	write("go.mod", "module x\n")
	write("main.go", "package main\n")
	h1, err := sourceHash(dir)
	if err != nil {
		t.Fatal(err)
	}
	write("recipe/run.sh", "echo\n")
	write("main_test.go", "package main\n")
	write("box.pkr.hcl", "")
	if h2, _ := sourceHash(dir); h2 != h1 {
		t.Error("recipe, tests or templates changed the plugin hash")
	}
	write("builder/local/x.go", "package local\n")
	if h3, _ := sourceHash(dir); h3 == h1 {
		t.Error("a source change kept the plugin hash")
	}
}
