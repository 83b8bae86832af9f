package release

import (
	"fmt"
	"os"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/box/boxtest"
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
	f, err := boxtest.BuildFakeAPI(dir, "../box")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeHost, fakeForeign, foreignArch = f.Host, f.Foreign, f.ForeignArch
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
