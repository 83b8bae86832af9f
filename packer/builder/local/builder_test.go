package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// scriptHook stands in for Packer's provisioners: it runs shell commands through the
// communicator the builder hands it, the way the shell provisioner does.
type scriptHook struct {
	cmds   []string
	output bytes.Buffer
}

func (h *scriptHook) Run(ctx context.Context, name string, ui packersdk.Ui, comm packersdk.Communicator, _ interface{}) error {
	if name != packersdk.HookProvision {
		return nil
	}
	for _, c := range h.cmds {
		cmd := &packersdk.RemoteCmd{Command: c, Stdout: &h.output, Stderr: &h.output}
		if err := comm.Start(ctx, cmd); err != nil {
			return err
		}
		if code := cmd.Wait(); code != 0 {
			return fmt.Errorf("script exited with non-zero exit status: %d: %s", code, strings.TrimSpace(h.output.String()))
		}
	}
	return nil
}

// debootstrapConfig is the template's default base (same cache key), so this test and
// `ami:local` share one debootstrap on a machine.
func debootstrapConfig(out string) map[string]interface{} {
	return map[string]interface{}{
		"output_dir": out,
		"include":    []string{"systemd", "systemd-sysv", "dbus"},
	}
}

func requireDebootstrap(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real debootstrap build: not with -short")
	}
	needRoot(t)
	if _, err := exec.LookPath("debootstrap"); err != nil {
		if os.Getenv("ZOPS_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("debootstrap is not installed (apt-get install debootstrap)")
		}
		t.Skip("debootstrap not installed")
	}
}

// TestBuildDebian builds a real root (the first run debootstraps into the cache, ~60 s; later
// runs copy it) and provisions it through the chroot communicator.
func TestBuildDebian(t *testing.T) {
	requireDebootstrap(t)
	out := filepath.Join(t.TempDir(), "root")
	b := &Builder{}
	if _, _, err := b.Prepare(debootstrapConfig(out)); err != nil {
		t.Fatal(err)
	}
	hook := &scriptHook{cmds: []string{
		// policy-rc.d is in place while provisioning (no $ here: the SDK chroot communicator
		// wraps commands in double quotes, so the host shell would expand it)...
		"grep -q 'exit 101' /usr/sbin/policy-rc.d && ! /usr/sbin/policy-rc.d",
		// ...and proc, dev and a writable dev/shm are there.
		"test -r /proc/self/status && test -c /dev/null && touch /dev/shm/x",
		"echo built > /etc/zops-built",
		"grep -q VERSION_CODENAME=bookworm /etc/os-release",
	}}
	ui := newUI()
	start := time.Now()
	art, err := b.Run(context.Background(), ui, hook)
	if err != nil {
		t.Fatalf("build: %v\noutput: %s\nui: %s", err, hook.output.String(), ui)
	}
	t.Logf("build took %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { _ = art.Destroy() })
	if art.Id() != out || art.BuilderId() != BuilderID {
		t.Errorf("artifact %q %q", art.Id(), art.BuilderId())
	}
	if b, err := os.ReadFile(filepath.Join(out, "etc/zops-built")); err != nil || string(b) != "built\n" {
		t.Errorf("provisioned file: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(out, "usr/sbin/policy-rc.d")); !os.IsNotExist(err) {
		t.Error("policy-rc.d shipped in the image")
	}
	if _, err := os.Stat(filepath.Join(out, "lib/systemd/systemd")); err != nil {
		t.Errorf("include list not honoured: %v", err)
	}
	assertNothingMounted(t, out)
	if err := art.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("Destroy left the root")
	}
}

// TestBuildFailsHalfway: a provisioner starts a daemon in the chroot and then fails. The
// build fails with the script's output, the daemon is stopped, nothing stays mounted and the
// half-built root is gone.
func TestBuildFailsHalfway(t *testing.T) {
	requireDebootstrap(t)
	out := filepath.Join(t.TempDir(), "root")
	b := &Builder{}
	if _, _, err := b.Prepare(debootstrapConfig(out)); err != nil {
		t.Fatal(err)
	}
	hook := &scriptHook{cmds: []string{
		"sleep 600 </dev/null >/dev/null 2>&1 &",
		"echo 'recipe: 10-packages.sh failed: E: Unable to locate package nosuch' >&2; exit 3",
	}}
	ui := newUI()
	_, err := b.Run(context.Background(), ui, hook)
	if err == nil {
		t.Fatal("build with a failing script succeeded")
	}
	if !strings.Contains(err.Error(), "Unable to locate package nosuch") || !strings.Contains(err.Error(), "3") {
		t.Errorf("error lacks the script's output: %v", err)
	}
	if !strings.Contains(ui.String(), "Stopped 1 process") {
		t.Errorf("the daemon left in the chroot was not reported stopped:\n%s", ui)
	}
	if pids := processesIn(out); len(pids) > 0 {
		t.Errorf("processes still running in the chroot: %v", pids)
	}
	assertNothingMounted(t, out)
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("half-built root left behind: %v", err)
	}
}
