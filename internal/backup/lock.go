package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrBusy reports that the same job already runs on this host.
var ErrBusy = errors.New("job is already running on this host")

// exclusive wraps fn so that only one instance of the job runs per host: a second one is
// refused at once with ErrBusy, naming the holder. (systemd never starts a oneshot unit twice,
// so this matters for hand-run targets.) Jobs on different hosts meet at restic's repository
// lock instead, which Repo.RetryLock makes them wait for.
func (j *Job) exclusive(name string, fn func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if j.ScratchDir == "" {
			return fn(ctx)
		}
		if err := os.MkdirAll(j.ScratchDir, 0o711); err != nil {
			return fmt.Errorf("%s: scratch dir: %w", name, err)
		}
		path := filepath.Join(j.ScratchDir, strings.ReplaceAll(name, ":", "-")+".lock")
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("%s: lock file: %w", name, err)
		}
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			holder, _ := os.ReadFile(path)
			return fmt.Errorf("%w: %s (lock %s held by pid %s); wait for it to finish", ErrBusy, name, path, strings.TrimSpace(string(holder)))
		}
		defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Truncate(0)
		_, _ = f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
		return fn(ctx)
	}
}
