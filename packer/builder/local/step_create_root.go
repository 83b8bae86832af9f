package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// stepCreateRoot makes output_dir a copy of the debootstrapped base for the configuration,
// debootstrapping it into the cache first when no build has made it yet. Cleanup removes the
// root again when the build did not finish.
type stepCreateRoot struct {
	// debootstrap runs debootstrap; tests may swap it. Nil means the real program.
	debootstrap func(ctx context.Context, cfg *Config, dir string, ui packersdk.Ui) error

	created string
}

func (s *stepCreateRoot) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg, ui := getConfig(state), getUI(state)
	if _, err := os.Lstat(cfg.OutputDir); err == nil {
		if !cfg.Force {
			return halt(state, fmt.Errorf("output_dir %s already exists (left by an earlier build?): remove it, or set force = true to replace it", cfg.OutputDir))
		}
		ui.Say(fmt.Sprintf("Removing existing %s (force)", cfg.OutputDir))
		if err := removeRoot(cfg.OutputDir); err != nil {
			return halt(state, err)
		}
	}
	arch, err := hostArch()
	if err != nil {
		return halt(state, err)
	}
	base, hit, err := s.ensureBase(ctx, cfg, arch, ui)
	if err != nil {
		return halt(state, err)
	}
	state.Put(keyCacheHit, hit)
	if err := os.MkdirAll(filepath.Dir(cfg.OutputDir), 0o755); err != nil {
		return halt(state, fmt.Errorf("create root: %w", err))
	}
	ui.Say(fmt.Sprintf("Copying the base root into %s", cfg.OutputDir))
	// Marked as created before the copy so a half-copied root is removed too.
	s.created = cfg.OutputDir
	if out, err := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", base, cfg.OutputDir).CombinedOutput(); err != nil {
		return halt(state, fmt.Errorf("copy base root %s to %s: %w: %s", base, cfg.OutputDir, err, bytes.TrimSpace(out)))
	}
	state.Put(keyRoot, cfg.OutputDir)
	return multistep.ActionContinue
}

func (s *stepCreateRoot) Cleanup(state multistep.StateBag) {
	if s.created == "" || !failed(state) {
		return
	}
	if err := removeRoot(s.created); err != nil {
		getUI(state).Error(fmt.Sprintf("cleanup: %v", err))
		return
	}
	s.created = ""
}

// ensureBase returns the cached base root for cfg, debootstrapping it under a lock first if
// needed. hit reports whether the cache already held it.
func (s *stepCreateRoot) ensureBase(ctx context.Context, cfg *Config, arch string, ui packersdk.Ui) (dir string, hit bool, err error) {
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		return "", false, fmt.Errorf("debootstrap cache: %w", err)
	}
	key := cfg.CacheKey(arch)
	dir = filepath.Join(cfg.CacheDir, key)
	// Two builds may want the same base at once: one debootstraps, the other waits.
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", false, fmt.Errorf("debootstrap cache lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", false, fmt.Errorf("debootstrap cache lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		ui.Say(fmt.Sprintf("Using cached debootstrap base %s", key))
		return dir, true, nil
	}
	ui.Say(fmt.Sprintf("Debootstrapping %s (%s, %s, %s) into the cache as %s; later builds reuse it", cfg.Suite, arch, cfg.Variant, cfg.Mirror, key))
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	run := s.debootstrap
	if run == nil {
		run = runDebootstrap
	}
	if err := run(ctx, cfg, tmp, ui); err != nil {
		// debootstrap mounts proc and sys in the target while it works; never leave them.
		cerr := unmountAll(tmp)
		if cerr == nil {
			cerr = removeRoot(tmp)
		}
		return "", false, errors.Join(err, cerr)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", false, fmt.Errorf("debootstrap cache: %w", err)
	}
	return dir, false, nil
}

// runDebootstrap runs the real debootstrap, streaming its progress and returning its last
// lines in the error when it fails.
func runDebootstrap(ctx context.Context, cfg *Config, dir string, ui packersdk.Ui) error {
	args := []string{"--variant=" + cfg.Variant}
	if len(cfg.Include) > 0 {
		args = append(args, "--include="+strings.Join(cfg.Include, ","))
	}
	args = append(args, cfg.Suite, dir, cfg.Mirror)
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return fmt.Errorf("debootstrap is not installed: apt-get install debootstrap")
	}
	cmd := exec.CommandContext(ctx, "debootstrap", args...)
	w := newTailWriter(ui, 30)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("debootstrap %s: %w\n%s", strings.Join(args, " "), err, w.Tail())
	}
	return nil
}

func hostArch() (string, error) {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		return "", fmt.Errorf("host architecture (dpkg --print-architecture): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// tailWriter shows each line in the UI and keeps the last n for an error message.
type tailWriter struct {
	ui   packersdk.Ui
	n    int
	buf  []byte
	tail []string
}

func newTailWriter(ui packersdk.Ui, n int) *tailWriter { return &tailWriter{ui: ui, n: n} }

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if w.ui != nil {
			w.ui.Message(line)
		}
		w.tail = append(w.tail, line)
		if len(w.tail) > w.n {
			w.tail = w.tail[1:]
		}
	}
	return len(p), nil
}

// Tail returns the last lines written.
func (w *tailWriter) Tail() string {
	t := append([]string(nil), w.tail...)
	if len(w.buf) > 0 {
		t = append(t, string(w.buf))
	}
	return strings.Join(t, "\n")
}
