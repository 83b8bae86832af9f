package twin

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/shtetl/zmanim-ops/internal/tools"
	"github.com/shtetl/zmanim-ops/internal/twin/daemon"
)

// initialRelease is the version the twin's box serves before the first `release`.
const initialRelease = "v0.0.0-twin"

// apiBuildFlags build the initial API the way `release` builds it for the host (-trimpath,
// CGO off; only the linker flags differ), so the first release finds every package of its
// host build compiled already instead of compiling them a second time.
var apiBuildFlags = []string{"-trimpath", "-buildvcs=false"}

// warm starts the slow, independent work of a first twin:up at once, in the background: the
// pinned tools build, the twin's own programs compile and the GeoNames cities download while
// PostgreSQL and Redis start and the database is seeded. A fresh machine spends most of its
// first twin:up waiting on downloads and single-threaded steps (initdb, seeding, linking), so
// running these side by side instead of one after another saves minutes; when everything is
// built already each of them is a stat or a cache hit.
//
// Errors are ignored here: the step that needs the result calls the same function, which
// waits for the background call (per-tool and per-output locks) and reports the error itself.
//
// The returned wait blocks until the background work has ended (Up waits for it, after
// cancelling ctx, when a step failed, so nothing is left writing into the state directory).
func (t *Twin) warm(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	bg := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	for _, name := range []string{"versitygw", "kumo"} {
		bg(func() { _, _ = tools.Ensure(ctx, name) })
	}
	if t.env.Twin.Cities == "geonames" {
		bg(func() { _, _ = GeoNames(ctx, io.Discard) })
	}
	bg(func() {
		if _, err := os.Stat(daemon.BoxBinary(t.st)); err != nil {
			_ = goBuild(ctx, t.root, t.initialAPI(), "./examples/zmanim-api", "-X main.version="+initialRelease, apiBuildFlags...)
		}
		_ = goBuild(ctx, t.root, t.st.Path("bin", "zops-twind"), "./cmd/zops-twind", "")
		_ = goBuild(ctx, t.root, t.st.Path("bin", "zops-backup"), "./cmd/zops-backup", "")
	})
	return wg.Wait
}

func (t *Twin) initialAPI() string {
	return filepath.Join(daemon.BoxReleases(t.st), initialRelease, "zmanim-api")
}

// builds remembers what goBuild built in this process, so the step that needs a binary the
// warm-up built (or is building) waits for it instead of compiling it a second time.
var builds = struct {
	sync.Mutex
	m map[string]*build
}{m: map[string]*build{}}

type build struct {
	sync.Mutex
	done bool
	err  error
}

// once runs f once per key in this process; a second caller waits for the first. A failed
// build is retried by the next caller (its error is the one reported).
func once(key string, f func() error) error {
	builds.Lock()
	b, ok := builds.m[key]
	if !ok {
		b = &build{}
		builds.m[key] = b
	}
	builds.Unlock()
	b.Lock()
	defer b.Unlock()
	if b.done {
		return nil
	}
	if err := f(); err != nil {
		return err
	}
	b.done = true
	return nil
}
