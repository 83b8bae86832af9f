package nsboot_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/boxbuild"
	"github.com/shtetl/zmanim-ops/internal/nsboot"
	"github.com/shtetl/zmanim-ops/internal/testenv"
	"github.com/shtetl/zmanim-ops/internal/tools"
)

// RootVar names a root directory with systemd installed to boot; by default the test boots
// the cached debootstrapped base of the box build (boxbuild.EnsureBase), building it once when
// integration is required. It writes only to the machine's tmpfs /run.
const RootVar = "ZOPS_TEST_BOX_ROOT"

func bootableRoot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if testenv.Required() {
			t.Fatal("nsboot needs root (namespaces, mounts)")
		}
		t.Skip("needs root (namespaces, mounts)")
	}
	if r := os.Getenv(RootVar); r != "" {
		return r
	}
	base := filepath.Join(boxbuild.CacheDir(), "base-bookworm-"+runtime.GOARCH)
	if _, err := os.Stat(filepath.Join(base, "lib", "systemd", "systemd")); err == nil {
		return base
	}
	// The packer zops-local builder's cached debootstrap (same include list) boots as well; it
	// is booted from a copy, so packer's cache is never changed.
	cands, _ := filepath.Glob(filepath.Join(tools.CacheDir(), "debootstrap", "bookworm-"+runtime.GOARCH+"-*"))
	for _, c := range cands {
		if _, err := os.Stat(filepath.Join(c, "lib", "systemd", "systemd")); err == nil {
			dst := filepath.Join(t.TempDir(), "root")
			if out, err := exec.Command("cp", "-a", c, dst).CombinedOutput(); err != nil {
				t.Fatalf("copy %s: %v %s", c, err, out)
			}
			return dst
		}
	}
	if !testenv.Required() {
		t.Skipf("no bootable root: set %s or run `go tool mage ami:local` once (it caches %s)", RootVar, base)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := boxbuild.EnsureBase(ctx, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBootExecStop(t *testing.T) {
	root := bootableRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A loop device of the host (the box proof's data volume) must survive the machine's
	// shutdown: systemd-shutdown detaches every loop device unless it knows it is in a container.
	img := filepath.Join(t.TempDir(), "vol.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	lo, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	loop := strings.TrimSpace(string(lo))
	defer exec.Command("losetup", "-d", loop).Run()
	var console strings.Builder
	m, err := nsboot.Boot(ctx, nsboot.Options{
		Root: root, Hostname: "nsboot-test",
		Net:      &nsboot.Net{Name: "zops-nsboot-t", HostIf: "znsb-h", PeerIf: "znsb-c", HostAddr: "10.77.61.1", PeerAddr: "10.77.61.2"},
		RunUnits: map[string]string{"nsboot-hello.service": "[Service]\nType=oneshot\nExecStart=/bin/echo hello-from-the-machine\n"},
		Console:  io.MultiWriter(&console, os.Stderr),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background())
	st, err := m.WaitRunning(ctx, 60*time.Second)
	if err != nil {
		out, _ := m.Systemctl(ctx, "--failed")
		t.Fatalf("%v\nfailed units:\n%s\nconsole:\n%s", err, out, console.String())
	}
	t.Logf("booted: %s", st)
	// systemd sets the hostname from the root's /etc/hostname, in the machine's own UTS namespace.
	hostBefore, _ := os.Hostname()
	if _, err := m.Exec(ctx, "hostname", "nsboot-test-renamed"); err != nil {
		t.Fatal(err)
	}
	if h, _ := os.Hostname(); h != hostBefore {
		t.Fatalf("the machine renamed the host: %q", h)
	}
	if out, err := m.Exec(ctx, "cat", "/proc/1/comm"); err != nil || strings.TrimSpace(out) != "systemd" {
		t.Fatalf("PID 1 is %q (%v), want systemd", out, err)
	}
	if _, err := m.Systemctl(ctx, "start", "nsboot-hello.service"); err != nil {
		t.Fatal(err)
	}
	if j := m.Journal(ctx, "nsboot-hello.service"); !strings.Contains(j, "hello-from-the-machine") {
		t.Fatalf("journal:\n%s", j)
	}
	if b, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(m.PID()), "net", "fib_trie")); err != nil || !strings.Contains(string(b), "10.77.61.2") {
		t.Fatalf("the machine's network namespace lacks 10.77.61.2: %v", err)
	}
	m.Stop(context.Background())
	select {
	case <-m.Done():
	case <-time.After(70 * time.Second):
		t.Fatal("machine did not stop")
	}
	if out, err := exec.Command("losetup", loop).CombinedOutput(); err != nil || !strings.Contains(string(out), img) {
		t.Fatalf("the machine's shutdown detached the host's %s: %v %s", loop, err, out)
	}
	if _, err := os.Stat("/run/netns/zops-nsboot-t"); err == nil {
		t.Fatal("network namespace left behind")
	}
	b, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(b), filepath.Clean(root)+"/proc") {
		t.Fatal("mounts left behind in the host's namespace")
	}
}
