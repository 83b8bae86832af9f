package boxbuild

import (
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The EC2 image's staging directory holds linux/arm64 binaries (the box is Graviton), restic
// included. Slow on a cold cache (cross-compiles restic): not in -short.
func TestStageArm64(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the box's binaries and restic")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "files")
	if err := StageArch(ctx, dir, "v0.0.0-test", "arm64", nil); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"bin/zops-box", "bin/zops-backup", "bin/restic", "api/v0.0.0-test/zmanim-api"} {
		f, err := elf.Open(filepath.Join(dir, b))
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if f.Machine != elf.EM_AARCH64 {
			t.Errorf("%s is %v, want arm64", b, f.Machine)
		}
		f.Close()
	}
	units, _ := os.ReadDir(filepath.Join(dir, "systemd"))
	if len(units) < 10 {
		t.Fatalf("staged %d units", len(units))
	}
}
