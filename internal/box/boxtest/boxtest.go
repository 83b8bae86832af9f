// Package boxtest builds the box supervisor's fake API (internal/box/testdata/fakeapi: speaks
// LISTEN_FDS/NOTIFY_SOCKET, reports its directory name as its version) for the tests of the
// packages that install and switch releases (onbox, release), once per test binary.
package boxtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// FakeAPI holds the fake API built for the host and for the other architecture.
type FakeAPI struct {
	Host        string
	Foreign     string // linux/arm64 on amd64 hosts and vice versa
	ForeignArch string
}

// BuildFakeAPI builds both binaries into dir; pkgDir is the path from the calling package's
// directory to internal/box (e.g. "../box").
func BuildFakeAPI(dir, pkgDir string) (FakeAPI, error) {
	f := FakeAPI{ForeignArch: map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]}
	f.Host = filepath.Join(dir, "fake-"+runtime.GOARCH)
	f.Foreign = filepath.Join(dir, "fake-"+f.ForeignArch)
	for arch, out := range map[string]string{runtime.GOARCH: f.Host, f.ForeignArch: f.Foreign} {
		cmd := exec.Command("go", "build", "-o", out, filepath.Join(pkgDir, "testdata", "fakeapi"))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if o, err := cmd.CombinedOutput(); err != nil {
			return f, fmt.Errorf("build fake api for %s: %v\n%s", arch, err, o)
		}
	}
	return f, nil
}
