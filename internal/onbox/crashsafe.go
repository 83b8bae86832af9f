package onbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Crash safety of the on-box deploy (issue 14, finding 8).
//
// The agent swaps `current` before it reloads (the supervisor starts what `current` points to)
// and proves the new version only afterwards. An agent killed in that window used to leave
// `current` on an unproven version that the next crash restart or reboot would start. Now:
//   - before the swap the agent writes a pending marker (pending.json: the version and the
//     proven previous one), fsynced with its directory; it removes the marker only once the
//     health gate passed, or after rolling back;
//   - the supervisor calls RecoverPending before every start: a marker left by an agent that is
//     no longer running (its deploy lock is free) swaps `current` back to the proven version,
//     so only a proven version is ever started by a restart or a boot;
//   - every file and symlink is written, fsynced and renamed, and the directory fsynced, so a
//     power cut leaves either the old or the new state, never a torn one;
//   - one deploy at a time: `zops-box deploy` takes an exclusive lock (flock) on deploy.lock;
//   - a fencing token (the release lock's, internal/s3lock) lower than one already seen is
//     refused, so a release whose lock was taken over cannot switch the box back.

// Errors of the crash-safety layer.
var (
	ErrBusy   = errors.New("another deploy is running on this box")
	ErrFenced = errors.New("fencing token is older than one this box has seen")
)

// Pending is the marker of a switch not yet proven healthy.
type Pending struct {
	Version  string    `json:"version"`
	Previous string    `json:"previous"` // proven; "" when there was none
	PID      int       `json:"pid"`
	Since    time.Time `json:"since"`
}

func (a *Agent) pendingPath() string { return filepath.Join(a.Dir(), "pending.json") }
func (a *Agent) lockPath() string    { return filepath.Join(a.Dir(), "deploy.lock") }
func (a *Agent) fencePath() string   { return filepath.Join(a.Dir(), "fence") }

// writeFileSync writes path atomically and durably: a temporary file in the same directory,
// fsynced, renamed over path, then the directory fsynced.
func writeFileSync(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory, so renames and unlinks in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// lockDeploy takes the box's deploy lock (flock, released by the kernel if the agent dies).
func (a *Agent) lockDeploy() (unlock func(), err error) {
	if err := os.MkdirAll(a.Dir(), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(a.lockPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(a.lockPath())
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s): wait for it to finish; zops-box status shows what serves", ErrBusy, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock %s: %w", a.lockPath(), err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d since %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))), 0)
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func (a *Agent) readPending() (*Pending, error) {
	b, err := os.ReadFile(a.pendingPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p Pending
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("parse %s: %w", a.pendingPath(), err)
	}
	return &p, nil
}

func (a *Agent) writePending(p Pending) error {
	b, _ := json.Marshal(p)
	return writeFileSync(a.pendingPath(), b, 0o644)
}

func (a *Agent) clearPending() error {
	if err := os.Remove(a.pendingPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(a.Dir())
}

// recoverPending puts `current` back on the proven version a dead agent's marker names. The
// caller holds the deploy lock. It returns the version it went back to ("" = nothing to do).
func (a *Agent) recoverPending() (string, error) {
	p, err := a.readPending()
	if err != nil || p == nil {
		return "", err
	}
	cur, err := a.Current()
	if err != nil {
		return "", err
	}
	if p.Previous != "" && cur != p.Previous {
		if err := a.swap(p.Previous); err != nil {
			return "", fmt.Errorf("recover the unfinished deploy of %s: %w", p.Version, err)
		}
	}
	if err := a.clearPending(); err != nil {
		return "", err
	}
	return p.Previous, nil
}

// RecoverPending is called by the supervisor before every start of the API (boot, crash
// restart): when an agent died between swapping `current` and proving the new version, it
// swaps `current` back to the proven version first. While a deploy runs (its lock is held) it
// does nothing: that agent's own reload and health gate are in charge.
func RecoverPending(root string, out io.Writer) (string, error) {
	a := &Agent{Root: root, Binary: "", Out: out}
	if _, err := os.Stat(a.pendingPath()); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	unlock, err := a.lockDeploy()
	if errors.Is(err, ErrBusy) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer unlock()
	v, err := a.recoverPending()
	if err == nil && v != "" && out != nil {
		fmt.Fprintf(out, "zops-box: an unfinished deploy left %s unproven; current is back on %s\n", a.current(), v)
	}
	return v, err
}

// checkFence refuses a token lower than the highest seen and records a higher one.
func (a *Agent) checkFence(token int64) error {
	if token <= 0 {
		return nil
	}
	b, err := os.ReadFile(a.fencePath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	seen, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if token < seen {
		return fmt.Errorf("%w: token %d, this box has seen %d: a newer release holds the deploy lock; nothing was changed", ErrFenced, token, seen)
	}
	if token > seen {
		return writeFileSync(a.fencePath(), []byte(strconv.FormatInt(token, 10)+"\n"), 0o644)
	}
	return nil
}

// DownloadBudget is what DeployWorstCase allows for fetching and verifying a release.
const DownloadBudget = 2 * time.Minute

// DeployWorstCase is the longest a `zops-box deploy` can take when everything fails as late as
// possible: the download, the new process's start (TimeoutStartSec) and the old one's stop
// (TimeoutStopSec), the whole health gate, then the reload back (start and stop again). The
// SSM execution timeout must exceed it, or SSM kills the agent mid-rollback (finding 8: a
// fixed 180 s was shorter than the ~213 s this adds up to with the production unit).
func DeployWorstCase(startTimeout, stopTimeout, health time.Duration) time.Duration {
	return DownloadBudget + 2*(startTimeout+stopTimeout) + health
}
