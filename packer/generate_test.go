package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var generateLine = regexp.MustCompile(`(?m)^//go:generate go tool packer-sdc mapstructure-to-hcl2 -type (\S+)$`)

// TestGeneratedHCL2SpecCurrent regenerates every committed *.hcl2spec.go with the pinned
// packer-sdc (a tool in go.mod) into a temporary file and fails when it differs: a config
// field added without `go generate ./...` would otherwise be silently missing from HCL.
func TestGeneratedHCL2SpecCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs packer-sdc (type-checks the package): not with -short")
	}
	specs, _ := filepath.Glob("builder/*/*.hcl2spec.go")
	if len(specs) == 0 {
		t.Fatal("no generated *.hcl2spec.go found")
	}
	for _, spec := range specs {
		spec := spec
		t.Run(spec, func(t *testing.T) {
			src := strings.TrimSuffix(spec, ".hcl2spec.go") + ".go"
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			m := generateLine.FindSubmatch(b)
			if m == nil {
				t.Fatalf("%s lacks a `//go:generate go tool packer-sdc mapstructure-to-hcl2 -type T` line", src)
			}
			// packer-sdc names its output after $GOFILE: point it into a temp dir.
			tmp := t.TempDir()
			cmd := exec.Command("go", "tool", "packer-sdc", "mapstructure-to-hcl2", "-type", string(m[1]))
			cmd.Dir = filepath.Dir(src)
			cmd.Env = append(os.Environ(), "GOFILE="+filepath.Join(tmp, filepath.Base(src)), "GOPACKAGE="+filepath.Base(filepath.Dir(src)))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("packer-sdc: %v\n%s", err, out)
			}
			want, err := os.ReadFile(filepath.Join(tmp, filepath.Base(spec)))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(spec)
			if !bytes.Equal(got, want) {
				t.Errorf("%s is out of date: run `go generate ./...` in packer/ and commit it", spec)
			}
		})
	}
}
