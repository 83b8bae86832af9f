package site

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Finding 2 (issue 14): an export holding leak.txt -> /proc/self/environ would upload the
// runner's AWS_* session to the public site. Scan must refuse any link that resolves outside
// the export root, and special files, naming each.
func TestScanRefusesSymlinkToProcSelfEnviron(t *testing.T) {
	t.Parallel()
	d := writeTree(t, map[string]string{"index.html": "home"})
	if err := os.Symlink("/proc/self/environ", filepath.Join(d, "leak.txt")); err != nil {
		t.Fatal(err)
	}
	files, err := Scan(context.Background(), d)
	if !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), "leak.txt") || !strings.Contains(err.Error(), "outside the export") {
		t.Fatalf("Scan = %d files, %v; want ErrBadFile naming leak.txt as outside the export", len(files), err)
	}
}

func TestScanRefusesLinksLeavingTheRoot(t *testing.T) {
	t.Parallel()
	outside := writeTree(t, map[string]string{"secret.txt": "AWS_SECRET_ACCESS_KEY=x"})
	tests := map[string]string{
		"absolute link to a file outside": filepath.Join(outside, "secret.txt"),
		"relative link climbing out":      "../../../../../../../../" + strings.TrimPrefix(filepath.Join(outside, "secret.txt"), "/"),
		"link to a link outside":          "hop.txt",
		"device file":                     "/dev/null",
	}
	for name, target := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := writeTree(t, map[string]string{"index.html": "home"})
			if name == "link to a link outside" {
				if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(d, "hop.txt")); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(target, filepath.Join(d, "x.txt")); err != nil {
				t.Fatal(err)
			}
			_, err := Scan(context.Background(), d)
			if !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), "x.txt") {
				t.Fatalf("Scan error = %v, want ErrBadFile naming x.txt", err)
			}
		})
	}
}

// A symlinked export root (out -> build/out) is still fine: links are judged against the
// resolved root, and links inside it keep working.
func TestScanSymlinkedRootWithInternalLink(t *testing.T) {
	t.Parallel()
	d := writeTree(t, map[string]string{"index.html": "home", "shared/logo.svg": "<svg/>"})
	if err := os.Symlink("shared/logo.svg", filepath.Join(d, "logo.svg")); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "out")
	if err := os.Symlink(d, root); err != nil {
		t.Fatal(err)
	}
	files, err := Scan(context.Background(), root)
	if err != nil || len(files) != 3 {
		t.Fatalf("Scan = %+v, %v; want 3 files", files, err)
	}
}
