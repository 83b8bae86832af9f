package twin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/twinstate"
)

// A state directory under a parent the postgres user cannot search (a clone in /root, 0700)
// moves PostgreSQL's files out, behind a symlink; a reachable one keeps them in place.
func TestPGDirMovesOutOfUnreachableState(t *testing.T) {
	cred, err := pgtool.ServerUser()
	if err != nil || cred == nil {
		t.Skip("needs root and the postgres user")
	}
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} { // the testing package makes them 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := relocatedPGRoot
	relocatedPGRoot = filepath.Join(base, "varlib")
	t.Cleanup(func() { relocatedPGRoot = old })

	open := filepath.Join(base, "open", "state")
	closed := filepath.Join(base, "closed", "state")
	for _, d := range []string{open, closed} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Dir(closed), 0o700); err != nil {
		t.Fatal(err)
	}

	tw := &Twin{st: twinstate.Dir(open), out: os.Stderr}
	if got := tw.pgDir(); got != filepath.Join(open, "pg") {
		t.Errorf("reachable state: pgDir = %s, want it in place", got)
	}

	tw = &Twin{st: twinstate.Dir(closed), out: os.Stderr}
	dir := tw.pgDir()
	if !strings.HasPrefix(dir, relocatedPGRoot) {
		t.Fatalf("unreachable state: pgDir = %s, want it under %s", dir, relocatedPGRoot)
	}
	if err := tw.ensurePGDir(); err != nil {
		t.Fatal(err)
	}
	if real, err := filepath.EvalSymlinks(filepath.Join(closed, "pg")); err != nil || real != dir {
		t.Fatalf("<state>/pg -> %s (%v), want %s", real, err, dir)
	}
	if again := tw.pgDir(); again != dir {
		t.Errorf("second call: %s, want %s (the symlink)", again, dir)
	}
	if !reachable(dir, cred) {
		t.Errorf("%s is not reachable by the postgres user", dir)
	}
	if reachable(closed, cred) {
		t.Errorf("%s under a 0700 directory counted as reachable", closed)
	}
}
