package nsboot

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// RootVar names a root directory with systemd installed (a debootstrapped Debian, e.g. the
// base root ami:local caches); the test boots a copy of nothing: it boots that root itself and
// writes only to its tmpfs /run.
const RootVar = "ZOPS_TEST_BOX_ROOT"

func TestBootExecStop(t *testing.T) {
	root := testenv.Require(t, RootVar)
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, mounts)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var console strings.Builder
	m, err := Boot(ctx, Options{
		Root: root, Hostname: "nsboot-test",
		Net:      &Net{Name: "zops-nsboot-t", HostIf: "znsb-h", PeerIf: "znsb-c", HostAddr: "10.77.61.1", PeerAddr: "10.77.61.2"},
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
	if out, err := m.Exec(ctx, "ip", "-4", "-o", "addr"); err != nil || !strings.Contains(out, "10.77.61.2") {
		t.Logf("no ip in root (%v); checking through the host", err)
	}
	m.Stop(context.Background())
	select {
	case <-m.Done():
	case <-time.After(70 * time.Second):
		t.Fatal("machine did not stop")
	}
	if _, err := os.Stat("/run/netns/zops-nsboot-t"); err == nil {
		t.Fatal("network namespace left behind")
	}
	b, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(b), filepath.Clean(root)+"/proc") {
		t.Fatal("mounts left behind in the host's namespace")
	}
}
