package onbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

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
	dir, err := os.MkdirTemp("", "onbox-test-")
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

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// publish puts version into st the way `mage release` leaves it (binaries, then the
// manifest last), with the fake API for each arch.
func publish(t *testing.T, st Store, version string) *Manifest {
	t.Helper()
	return publishBins(t, st, version, map[string]string{runtime.GOARCH: fakeHost, foreignArch: fakeForeign})
}

// publishBins publishes version with the given local file as the binary of each arch.
func publishBins(t *testing.T, st Store, version string, bins map[string]string) *Manifest {
	t.Helper()
	ctx := context.Background()
	m := &Manifest{Version: version, Commit: strings.Repeat("c", 40), GoVersion: runtime.Version(), BuiltAt: time.Now().UTC(), BuiltBy: "tester"}
	for arch, src := range bins {
		b, err := os.ReadFile(src)
		must(t, err)
		h := sha256.Sum256(b)
		a := Artifact{Name: "zmanim-api", OS: "linux", Arch: arch, Path: src, Key: ArtifactKey(version, "zmanim-api", arch), SHA256: hex.EncodeToString(h[:]), Size: int64(len(b))}
		_, err = st.Put(ctx, a.Key, b, Cond{IfAbsent: true})
		must(t, err)
		m.Artifacts = append(m.Artifacts, a)
	}
	mb, err := json.Marshal(m)
	must(t, err)
	_, err = st.Put(ctx, ManifestKey(version), mb, Cond{IfAbsent: true})
	must(t, err)
	return m
}
