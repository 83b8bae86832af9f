package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepMountFilesystems mounts what package scripts expect inside the root: proc, sys
// (read-only), the host's /dev, a fresh devpts and a private dev/shm. First the root is bound
// onto itself and made private, so nothing mounted below it propagates to the host's mount
// table; /dev is bound without its submounts and made private before dev/shm is mounted,
// because a shared /dev bind would carry the new tmpfs onto the host's /dev/shm (and booting
// or killing things in the root then broke a PostgreSQL outside it: DESIGN.md).
//
// Cleanup always runs, on success too: it stops every process whose root is inside the
// chroot, then unmounts everything below the root, deepest first.
type stepMountFilesystems struct {
	root string
}

type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

func (s *stepMountFilesystems) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	root, _ := getRoot(state)
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return halt(state, fmt.Errorf("mount: %w", err))
	}
	s.root = real
	at := func(p string) string { return filepath.Join(real, p) }
	plan := []mount{
		{real, real, "", syscall.MS_BIND | syscall.MS_REC, ""},
		{"", real, "", syscall.MS_PRIVATE | syscall.MS_REC, ""},
		{"proc", at("proc"), "proc", syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC, ""},
		{"sysfs", at("sys"), "sysfs", syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC, ""},
		{"/dev", at("dev"), "", syscall.MS_BIND, ""},
		{"", at("dev"), "", syscall.MS_PRIVATE, ""},
		{"devpts", at("dev/pts"), "devpts", syscall.MS_NOSUID | syscall.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620"},
		{"shm", at("dev/shm"), "tmpfs", syscall.MS_NOSUID | syscall.MS_NODEV, "mode=1777"},
	}
	for _, m := range plan {
		if m.fstype != "" || m.source != "" {
			if err := os.MkdirAll(m.target, 0o755); err != nil {
				return halt(state, fmt.Errorf("mount %s: %w", m.target, err))
			}
		}
		if err := syscall.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
			return halt(state, fmt.Errorf("mount %s on %s: %w (the local builder needs root and CAP_SYS_ADMIN)", nonEmpty(m.source, m.fstype), m.target, err))
		}
	}
	return multistep.ActionContinue
}

func (s *stepMountFilesystems) Cleanup(state multistep.StateBag) {
	if s.root == "" {
		return
	}
	ui := getUI(state)
	if pids := killProcessesIn(s.root, 3*time.Second); len(pids) > 0 {
		ui.Say(fmt.Sprintf("Stopped %d process(es) left running in the chroot: %v", len(pids), pids))
	}
	if err := unmountAll(s.root); err != nil {
		ui.Error(fmt.Sprintf("cleanup: %v", err))
		state.Put(keyError, fmt.Errorf("cleanup: %w", err))
	}
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
