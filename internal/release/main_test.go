package release

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Test binaries built once: the fake API of internal/box (speaks LISTEN_FDS/NOTIFY_SOCKET,
// reports its directory name as its version) for the host and for the other arch.
var (
	fakeHost    string
	fakeForeign string // linux/arm64 on amd64 hosts and vice versa
	foreignArch string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "release-test-")
	if err != nil {
		panic(err)
	}
	foreignArch = map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	fakeHost = filepath.Join(dir, "fake-"+runtime.GOARCH)
	fakeForeign = filepath.Join(dir, "fake-"+foreignArch)
	for arch, out := range map[string]string{runtime.GOARCH: fakeHost, foreignArch: fakeForeign} {
		cmd := exec.Command("go", "build", "-o", out, "../box/testdata/fakeapi")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if o, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build fake api for %s: %v\n%s", arch, err, o)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
