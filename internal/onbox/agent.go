// Package onbox is the on-box half of a release: the agent that installs a version from the
// releases bucket (verifying its sha256 and ELF machine), swaps `current`, reloads the box
// supervisor, gates on /health and rolls back, plus the bucket layout and manifest both halves
// share. It is what cmd/zops-box links: it must not import internal/release or the load
// generator, so the box binary stays small (cmd/zops-box's test checks `go list -deps`).
package onbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/box"
)

// Errors of the on-box deploy.
var (
	ErrChecksum   = errors.New("sha256 mismatch")
	ErrWrongArch  = errors.New("binary is for the wrong architecture")
	ErrHealthGate = errors.New("health gate failed; rolled back")
	ErrNoRelease  = errors.New("release not found")
)

// Supervisor is the box supervisor's control API (box.Client, or *box.Supervisor in tests).
type Supervisor interface {
	// Reload starts the binary `current` points to, waits for READY=1 and stops the old
	// process; on failure the old process keeps serving.
	Reload(ctx context.Context) (box.Process, error)
	// Logs returns the last n lines of the API processes' output.
	Logs(ctx context.Context, n int) (string, error)
}

// Agent is the on-box half of a release, shared by the twin (run in-process by
// `mage release`) and production (`zops-box deploy VERSION`, sent over SSM Run Command).
//
// Layout under Root (the same as production's /):
//
//	opt/zmanim/releases/<version>/<binary>   installed side by side
//	opt/zmanim/current -> releases/<version> swapped atomically (rename of a new symlink)
type Agent struct {
	Root          string // "/" in production, <state>/box on the twin
	Binary        string // zmanim-api
	Arch          string // GOARCH of the box
	Store         Store
	Supervisor    Supervisor
	HealthURL     string      // through the edge on the twin; the box's own port in production
	HealthHeader  http.Header // e.g. the origin-verify header on the box's own port
	HealthTimeout time.Duration
	Keep          int // releases kept installed (never the current or the rollback target)
	Out           io.Writer
	HTTP          *http.Client
	// Fence is the release lock's fencing token (0: none); a token lower than one this box
	// has already seen is refused (crashsafe.go).
	Fence int64
}

// Dir is <root>/opt/zmanim.
func (a *Agent) Dir() string { return filepath.Join(a.Root, "opt", "zmanim") }

func (a *Agent) current() string  { return filepath.Join(a.Dir(), "current") }
func (a *Agent) releases() string { return filepath.Join(a.Dir(), "releases") }

func (a *Agent) printf(format string, args ...any) {
	if a.Out != nil {
		fmt.Fprintf(a.Out, format, args...)
	}
}

// Current returns the version `current` points to ("" when there is none).
func (a *Agent) Current() (string, error) {
	t, err := os.Readlink(a.current())
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", a.current(), err)
	}
	return filepath.Base(filepath.Clean(t)), nil
}

// Installed lists the installed versions, oldest first (by install time).
func (a *Agent) Installed() ([]string, error) {
	ents, err := os.ReadDir(a.releases())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type iv struct {
		v string
		t time.Time
	}
	var vs []iv
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		vs = append(vs, iv{e.Name(), fi.ModTime()})
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].t.Before(vs[j].t) })
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.v
	}
	return out, nil
}

// Outcome of an on-box deploy.
type Outcome struct {
	Version    string
	Previous   string
	RolledBack bool
	Logs       string // last log lines of a failed process
}

// Deploy installs version and switches to it: download and verify against the manifest,
// check the ELF machine, install side by side, swap `current`, reload the supervisor, then
// require /health to report the version within HealthTimeout. Any failure after the swap
// swaps back (and reloads if the new process had taken over) and returns an error carrying
// the failed process's last log lines; the previous version keeps serving throughout.
func (a *Agent) Deploy(ctx context.Context, version string) (Outcome, error) {
	out := Outcome{Version: version}
	if err := ValidVersion(version); err != nil {
		return out, err
	}
	unlock, err := a.lockDeploy()
	if err != nil {
		return out, err
	}
	defer unlock()
	if err := a.checkFence(a.Fence); err != nil {
		return out, err
	}
	if v, err := a.recoverPending(); err != nil {
		return out, err
	} else if v != "" {
		a.printf("  an earlier deploy died before its health gate: %s is back on %s\n", a.current(), v)
	}
	prev, err := a.Current()
	if err != nil {
		return out, err
	}
	out.Previous = prev
	if err := a.Install(ctx, version); err != nil {
		return out, err
	}
	if prev == version {
		a.printf("  %s is already current; reloading it\n", version)
	}
	// The marker goes down before the swap: if this agent dies before the health gate, the
	// supervisor's next start (RecoverPending) goes back to prev instead of starting version.
	if err := a.writePending(Pending{Version: version, Previous: prev, PID: os.Getpid(), Since: time.Now().UTC()}); err != nil {
		return out, fmt.Errorf("record the pending switch: %w", err)
	}
	if err := a.swap(version); err != nil {
		_ = a.clearPending()
		return out, err
	}
	a.printf("  %s -> releases/%s (was %s)\n", a.current(), version, orNone(prev))
	fail := func(cause error, reloaded bool) (Outcome, error) {
		out.RolledBack = true
		logs := a.versionLogs(ctx, version)
		if se := new(box.StartError); errors.As(cause, &se) && se.Logs != "" {
			logs = se.Logs
		}
		// Over the control API the StartError arrives as text with its log lines: show them
		// once, below the error.
		if msg, lines, ok := strings.Cut(cause.Error(), "\n--- last log lines ---\n"); ok {
			cause, logs = errors.New(msg), lines
		}
		out.Logs = logs
		if prev == "" {
			return out, fmt.Errorf("%w: %v (there is no previous version to roll back to)\n--- last log lines ---\n%s", ErrHealthGate, cause, logs)
		}
		if err := a.swap(prev); err != nil {
			return out, fmt.Errorf("%v; and rolling back to %s failed: %w", cause, prev, err)
		}
		if reloaded {
			if _, err := a.Supervisor.Reload(context.WithoutCancel(ctx)); err != nil {
				return out, fmt.Errorf("%v; and reloading the previous version %s failed: %w", cause, prev, err)
			}
		}
		_ = a.clearPending()
		a.printf("  rolled back: %s -> releases/%s, serving %s\n", a.current(), prev, prev)
		return out, fmt.Errorf("%w to %s: %v\n--- last log lines of %s ---\n%s", ErrHealthGate, prev, cause, version, strings.TrimRight(logs, "\n"))
	}
	p, err := a.Supervisor.Reload(ctx)
	if err != nil {
		// The supervisor kept the old process: swap the link back, no reload needed.
		return fail(fmt.Errorf("the new process did not start: %w", err), false)
	}
	a.printf("  supervisor: %s ready (pid %d); previous process stopped\n", p.Version, p.PID)
	if err := a.healthGate(ctx, version); err != nil {
		return fail(err, true)
	}
	if err := a.clearPending(); err != nil {
		return out, fmt.Errorf("%s serves and passed the health gate, but clearing %s failed: %w (a restart would go back to %s)", version, a.pendingPath(), err, orNone(prev))
	}
	return out, nil
}

// versionLogs returns the supervisor's last output lines of version's processes.
func (a *Agent) versionLogs(ctx context.Context, version string) string {
	all, err := a.Supervisor.Logs(context.WithoutCancel(ctx), 400)
	if err != nil {
		return ""
	}
	var own []string
	for _, l := range strings.Split(all, "\n") {
		if strings.Contains(l, "] "+version+": ") {
			own = append(own, l)
		}
	}
	if len(own) > 40 {
		own = own[len(own)-40:]
	}
	return strings.Join(own, "\n")
}

// Install downloads version's binary for the box's arch into releases/<version>, verifying
// its sha256 and ELF machine; an already installed identical binary is kept.
func (a *Agent) Install(ctx context.Context, version string) error {
	mb, _, err := a.Store.Get(ctx, ManifestKey(version))
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %s has no manifest in s3://%s; list releases with `go tool mage release:history`", ErrNoRelease, version, a.Store.Bucket())
	}
	if err != nil {
		return err
	}
	m, err := ParseManifest(mb)
	if err != nil {
		return err
	}
	if m.Version != version {
		return fmt.Errorf("manifest of %s names version %s", version, m.Version)
	}
	art, ok := m.Artifact(a.Binary, a.Arch)
	if !ok {
		return fmt.Errorf("%w: release %s has no %s for linux/%s", ErrNoRelease, version, a.Binary, a.Arch)
	}
	dst := filepath.Join(a.releases(), version, a.Binary)
	if sum, _, err := FileSHA256(dst); err == nil && sum == art.SHA256 {
		a.printf("  %s already installed (sha256 verified)\n", dst)
		return nil
	}
	body, _, err := a.Store.Get(ctx, art.Key)
	if err != nil {
		return fmt.Errorf("download %s: %w", art.Key, err)
	}
	h := sha256.Sum256(body)
	if got := hex.EncodeToString(h[:]); got != art.SHA256 {
		return fmt.Errorf("%w: s3://%s/%s has sha256 %s, the manifest says %s: the download is corrupt or the object was replaced; nothing was installed", ErrChecksum, a.Store.Bucket(), art.Key, got, art.SHA256)
	}
	if err := CheckELF(body, a.Arch); err != nil {
		return fmt.Errorf("%s of release %s: %w; nothing was installed", art.Key, version, err)
	}
	if err := os.MkdirAll(a.releases(), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(a.releases(), "."+version+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := writeFileSync(filepath.Join(tmp, a.Binary), body, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	final := filepath.Join(a.releases(), version)
	if cur, _ := a.Current(); cur == version {
		return fmt.Errorf("releases/%s is current but its binary differs from the manifest; refusing to replace a running release", version)
	}
	_ = os.RemoveAll(final) // a broken earlier install of this version
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("install %s: %w", final, err)
	}
	if err := syncDir(a.releases()); err != nil {
		return fmt.Errorf("install %s: %w", final, err)
	}
	a.printf("  installed %s (%d bytes, sha256 %s verified, ELF %s)\n", filepath.Join(final, a.Binary), len(body), art.SHA256[:16], a.Arch)
	return nil
}

// swap points `current` at releases/<version> atomically: a new symlink renamed over it.
func (a *Agent) swap(version string) error {
	if _, err := os.Stat(filepath.Join(a.releases(), version, a.Binary)); err != nil {
		return fmt.Errorf("swap to %s: %w", version, err)
	}
	tmp := filepath.Join(a.Dir(), fmt.Sprintf(".current.tmp-%d", os.Getpid()))
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Join("releases", version), tmp); err != nil {
		return fmt.Errorf("swap to %s: %w", version, err)
	}
	if err := os.Rename(tmp, a.current()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("swap to %s: %w", version, err)
	}
	return syncDir(a.Dir())
}

// unhealthyLimit is how many consecutive unhealthy answers of the new version (200 ms apart)
// fail the gate before its timeout.
const unhealthyLimit = 5

func (a *Agent) healthGate(ctx context.Context, version string) error {
	hc := a.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 3 * time.Second}
	}
	timeout := a.HealthTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	t0 := time.Now()
	deadline := t0.Add(timeout)
	var last string
	bad := 0 // consecutive failing answers from the new version itself
	for {
		v, code, err := GetHealth(ctx, hc, a.HealthURL, a.HealthHeader)
		if err == nil && code == http.StatusOK && v == version {
			a.printf("  health gate: %s reports %s after %s\n", a.HealthURL, v, round(time.Since(t0)))
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("status %d, version %q", code, v)
		}
		// The new version answering unhealthy serves errors to users: give up after a
		// second of that instead of waiting out the whole timeout.
		if err == nil && v == version && code != http.StatusOK {
			bad++
		} else {
			bad = 0
		}
		if bad >= unhealthyLimit {
			return fmt.Errorf("%s: version %s answered unhealthy %d times in a row (last: %s)", a.HealthURL, version, bad, last)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not report version %s with status 200 within %s (last: %s)", a.HealthURL, version, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Prune removes installed releases beyond Keep, oldest first, never the current one or
// keep (the rollback target).
func (a *Agent) Prune(keep ...string) ([]string, error) {
	if a.Keep <= 0 {
		return nil, nil
	}
	vs, err := a.Installed()
	if err != nil {
		return nil, err
	}
	cur, _ := a.Current()
	protect := map[string]bool{cur: true}
	for _, k := range keep {
		protect[k] = true
	}
	var removed []string
	excess := len(vs) - a.Keep
	for _, v := range vs {
		if excess <= 0 {
			break
		}
		if protect[v] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(a.releases(), v)); err != nil {
			return removed, err
		}
		removed = append(removed, v)
		excess--
	}
	return removed, nil
}

// CheckELF verifies b is a 64-bit little-endian ELF executable for arch.
func CheckELF(b []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: not an ELF executable (%v)", ErrWrongArch, err)
	}
	want := map[string]elf.Machine{"arm64": elf.EM_AARCH64, "amd64": elf.EM_X86_64}[arch]
	if want == 0 {
		return fmt.Errorf("unsupported box architecture %q", arch)
	}
	if f.Machine != want {
		return fmt.Errorf("%w: ELF machine %s, the box is %s (%s)", ErrWrongArch, f.Machine, arch, want)
	}
	return nil
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
