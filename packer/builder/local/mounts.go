package local

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// mountsUnder lists the mount points at or below root, deepest first, read from
// /proc/self/mountinfo (the plugin runs in the mount namespace it mounted in).
func mountsUnder(root string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == root || strings.HasPrefix(mp, root+"/") {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	// Deepest first; a path mounted twice appears twice and is unmounted twice.
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescapeMount decodes the octal escapes (\040 for a space) of mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAll unmounts everything at or below root, deepest first; a busy mount is detached
// lazily so cleanup never leaves a mount behind even when a stray process holds it.
func unmountAll(root string) error {
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		mps, err := mountsUnder(root)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, mp := range mps {
			if err := syscall.Unmount(mp, 0); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
					errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
				}
			}
		}
	}
	if mps, _ := mountsUnder(root); len(mps) > 0 {
		errs = append(errs, fmt.Errorf("still mounted under %s: %s", root, strings.Join(mps, ", ")))
	}
	return errors.Join(errs...)
}

// processesIn lists the processes whose root directory is root or below it: whatever the
// provisioners started in the chroot and left running.
func processesIn(root string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		r, err := os.Readlink(filepath.Join("/proc", e.Name(), "root"))
		if err != nil {
			continue
		}
		if r == root || strings.HasPrefix(r, root+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killProcessesIn stops every process running inside root: TERM, a grace period, then KILL.
func killProcessesIn(root string, grace time.Duration) []int {
	pids := processesIn(root)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && len(processesIn(root)) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range processesIn(root) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	for i := 0; i < 40 && len(processesIn(root)) > 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	return pids
}

// removeRoot deletes a root directory, refusing while anything is mounted below it: a
// recursive delete through a bind mount of /dev would delete the host's device nodes.
func removeRoot(root string) error {
	mps, err := mountsUnder(root)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("refusing to remove %s: still mounted: %s", root, strings.Join(mps, ", "))
	}
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("remove %s: %w", root, err)
	}
	return nil
}
