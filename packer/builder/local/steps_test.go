package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

func fakeDebootstrap(calls *int, fail bool) func(context.Context, *Config, string, packersdk.Ui) error {
	return func(_ context.Context, _ *Config, dir string, _ packersdk.Ui) error {
		*calls++
		if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "etc/os-release"), []byte("ID=debian\n"), 0o644); err != nil {
			return err
		}
		if fail {
			return errors.New("debootstrap: E: Couldn't find these debs: nosuchpackage")
		}
		return nil
	}
}

func TestStepCreateRoot(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	cfg := &Config{Suite: "bookworm", Mirror: "http://m", Variant: "minbase", CacheDir: filepath.Join(tmp, "cache"), OutputDir: filepath.Join(tmp, "out", "root")}
	calls := 0

	// Cold: debootstraps into the cache, copies into output_dir.
	s, _ := newState(t, cfg)
	step := &stepCreateRoot{debootstrap: fakeDebootstrap(&calls, false)}
	if a := run(t, step, s); a != multistep.ActionContinue {
		t.Fatalf("cold run halted: %v", s.Get(keyError))
	}
	if calls != 1 || s.Get(keyCacheHit) != false {
		t.Fatalf("cold: calls=%d hit=%v", calls, s.Get(keyCacheHit))
	}
	if _, err := os.Stat(filepath.Join(cfg.OutputDir, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
	step.Cleanup(s) // a successful build keeps its root
	if _, err := os.Stat(cfg.OutputDir); err != nil {
		t.Fatal("cleanup of a finished build removed the root")
	}

	// Existing output_dir: refused, and Cleanup does not touch it.
	s, _ = newState(t, cfg)
	step = &stepCreateRoot{debootstrap: fakeDebootstrap(&calls, false)}
	if a := run(t, step, s); a != multistep.ActionHalt || !strings.Contains(s.Get(keyError).(error).Error(), "already exists") {
		t.Fatalf("existing output_dir: action %v err %v", a, s.Get(keyError))
	}
	s.Put(multistep.StateHalted, true)
	step.Cleanup(s)
	if _, err := os.Stat(cfg.OutputDir); err != nil {
		t.Fatal("cleanup removed a root this run did not create")
	}

	// Warm with force: no debootstrap; a failed build's Cleanup removes the root.
	cfg.Force = true
	s, _ = newState(t, cfg)
	step = &stepCreateRoot{debootstrap: fakeDebootstrap(&calls, false)}
	if a := run(t, step, s); a != multistep.ActionContinue {
		t.Fatalf("warm run halted: %v", s.Get(keyError))
	}
	if calls != 1 || s.Get(keyCacheHit) != true {
		t.Fatalf("warm: calls=%d hit=%v", calls, s.Get(keyCacheHit))
	}
	s.Put(multistep.StateHalted, true)
	step.Cleanup(s)
	if _, err := os.Stat(cfg.OutputDir); !os.IsNotExist(err) {
		t.Fatalf("failed build left its root: %v", err)
	}
}

func TestStepCreateRootDebootstrapFails(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	cfg := &Config{Suite: "bookworm", Mirror: "http://m", Variant: "minbase", Include: []string{"nosuchpackage"}, CacheDir: filepath.Join(tmp, "cache"), OutputDir: filepath.Join(tmp, "root")}
	calls := 0
	s, _ := newState(t, cfg)
	step := &stepCreateRoot{debootstrap: fakeDebootstrap(&calls, true)}
	if a := run(t, step, s); a != multistep.ActionHalt {
		t.Fatal("debootstrap failure did not halt")
	}
	if err := s.Get(keyError).(error); !strings.Contains(err.Error(), "nosuchpackage") {
		t.Errorf("error lacks debootstrap's message: %v", err)
	}
	s.Put(multistep.StateHalted, true)
	step.Cleanup(s)
	ents, _ := os.ReadDir(cfg.CacheDir)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("failed debootstrap left %s in the cache", e.Name())
		}
	}
	if _, err := os.Stat(cfg.OutputDir); !os.IsNotExist(err) {
		t.Errorf("output_dir exists after a failed debootstrap")
	}
}

func TestStepInstallPolicy(t *testing.T) {
	t.Parallel()
	for _, existing := range []bool{false, true} {
		root := t.TempDir()
		p := filepath.Join(root, "usr/sbin/policy-rc.d")
		if existing {
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755)
		}
		s, _ := newState(t, &Config{})
		s.Put(keyRoot, root)
		step := &stepInstallPolicy{}
		if a := run(t, step, s); a != multistep.ActionContinue {
			t.Fatal(s.Get(keyError))
		}
		b, _ := os.ReadFile(p)
		if !strings.Contains(string(b), "exit 101") {
			t.Fatalf("policy-rc.d = %q", b)
		}
		step.Cleanup(s)
		b, err := os.ReadFile(p)
		switch {
		case existing && string(b) != "#!/bin/sh\nexit 0\n":
			t.Errorf("existing policy-rc.d not restored: %q %v", b, err)
		case !existing && !os.IsNotExist(err):
			t.Errorf("policy-rc.d left in the image: %v", err)
		}
	}
}

func TestStepCopyResolvConf(t *testing.T) {
	t.Parallel()
	host := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(host, []byte("nameserver 192.0.2.1\n"), 0o644)
	for _, kind := range []string{"absent", "file", "symlink"} {
		t.Run(kind, func(t *testing.T) {
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "etc"), 0o755)
			p := filepath.Join(root, "etc/resolv.conf")
			switch kind {
			case "file":
				os.WriteFile(p, []byte("nameserver 198.51.100.1\n"), 0o644)
			case "symlink":
				os.Symlink("../run/systemd/resolve/stub-resolv.conf", p)
			}
			s, _ := newState(t, &Config{})
			s.Put(keyRoot, root)
			step := &stepCopyResolvConf{hostFile: host}
			if a := run(t, step, s); a != multistep.ActionContinue {
				t.Fatal(s.Get(keyError))
			}
			if b, _ := os.ReadFile(p); string(b) != "nameserver 192.0.2.1\n" {
				t.Fatalf("chroot resolv.conf = %q", b)
			}
			step.Cleanup(s)
			switch kind {
			case "absent":
				if _, err := os.Lstat(p); !os.IsNotExist(err) {
					t.Error("host resolv.conf left in the image")
				}
			case "file":
				if b, _ := os.ReadFile(p); string(b) != "nameserver 198.51.100.1\n" {
					t.Errorf("not restored: %q", b)
				}
			case "symlink":
				if l, _ := os.Readlink(p); l != "../run/systemd/resolve/stub-resolv.conf" {
					t.Errorf("symlink not restored: %q", l)
				}
			}
		})
	}
}

func TestStepMountFilesystems(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	for _, d := range []string{"proc", "sys", "dev"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	s, _ := newState(t, &Config{})
	s.Put(keyRoot, root)
	step := &stepMountFilesystems{}
	t.Cleanup(func() { _ = unmountAll(root) })
	if a := run(t, step, s); a != multistep.ActionContinue {
		t.Fatal(s.Get(keyError))
	}
	mps, _ := mountsUnder(root)
	for _, want := range []string{"proc", "sys", "dev", "dev/pts", "dev/shm"} {
		found := false
		for _, m := range mps {
			found = found || m == filepath.Join(root, want)
		}
		if !found {
			t.Errorf("%s not mounted (mounts: %v)", want, mps)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "proc/self/status")); err != nil {
		t.Errorf("proc not usable: %v", err)
	}
	// dev/shm is the root's own: a file there must not appear in the host's /dev/shm.
	marker := "zops-local-test-" + filepath.Base(root)
	if err := os.WriteFile(filepath.Join(root, "dev/shm", marker), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/dev/shm", marker)); err == nil {
		os.Remove(filepath.Join("/dev/shm", marker))
		t.Error("dev/shm of the root is the host's /dev/shm")
	}
	// The mounts do not leak into the host's view of /dev.
	hostMps, _ := mountsUnder("/dev")
	for _, m := range hostMps {
		if strings.HasPrefix(m, root) {
			t.Errorf("mount %s propagated", m)
		}
	}
	step.Cleanup(s)
	assertNothingMounted(t, root)
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Fatalf("host /dev damaged: %v", err)
	}
}

func TestRemoveRootRefusesMounted(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "proc"), 0o755)
	s, _ := newState(t, &Config{})
	s.Put(keyRoot, root)
	step := &stepMountFilesystems{}
	t.Cleanup(func() { _ = unmountAll(root) })
	os.MkdirAll(filepath.Join(root, "sys"), 0o755)
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	if a := run(t, step, s); a != multistep.ActionContinue {
		t.Fatal(s.Get(keyError))
	}
	if err := removeRoot(root); err == nil || !strings.Contains(err.Error(), "still mounted") {
		t.Fatalf("removeRoot with mounts: %v", err)
	}
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Fatal("host /dev damaged")
	}
	step.Cleanup(s)
	if err := removeRoot(root); err != nil {
		t.Fatal(err)
	}
}

func TestUnescapeMount(t *testing.T) {
	t.Parallel()
	if got := unescapeMount(`/a\040b`); got != "/a b" {
		t.Errorf("got %q", got)
	}
}
