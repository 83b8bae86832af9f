// Package restic is a typed wrapper of the restic command line (pinned release 0.17.x).
//
// It builds commands, parses their `--json` output and turns exit codes into typed errors
// (see ExitError and the Err* sentinels). The repository password and the S3 keys travel to the
// restic child process through its environment only: never on a command line, never printed,
// and never inherited by a command restic runs for `--stdin-from-command`.
package restic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Repo is one restic repository and how to reach it.
type Repo struct {
	// Bin is the restic binary (tools.Ensure(ctx, "restic") or testenv.ResticBin).
	Bin string
	// URL is the repository, e.g. s3:http://127.0.0.1:17070/zmanim-backups-local/restic.
	URL string
	// Password opens the repository; passed as RESTIC_PASSWORD to the child only.
	Password string
	// PasswordCommand is used instead of Password when set (RESTIC_PASSWORD_COMMAND).
	PasswordCommand string
	// Env is extra environment for restic, typically AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	Env []string
	// Options are extended options (-o key=value), e.g. s3.bucket-lookup=path.
	Options []string
	// RetryLock makes restic wait this long for a lock held by another process (--retry-lock)
	// before failing with ErrLocked; 0 fails at once.
	RetryLock time.Duration
	// CacheDir is restic's local cache; empty disables the cache (--no-cache).
	CacheDir string
	// Log receives restic's standard error as it runs (progress, warnings); nil discards it.
	Log io.Writer
	// StopGrace is how long a cancelled restic gets after SIGINT to remove its lock before it
	// is killed (default 15s).
	StopGrace time.Duration
}

// String describes the repository without any secret.
func (r *Repo) String() string { return r.URL }

// secretEnv lists variables that carry secrets to restic and must not reach the commands it
// starts (--stdin-from-command).
var secretEnv = []string{"RESTIC_PASSWORD", "RESTIC_PASSWORD_COMMAND", "RESTIC_PASSWORD_FILE", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

func (r *Repo) env() ([]string, error) {
	if r.Password == "" && r.PasswordCommand == "" {
		return nil, fmt.Errorf("%w for %s (set the SSM parameter restic-password, or RESTIC_PASSWORD for local runs)", ErrNoPassword, r.URL)
	}
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "RESTIC_") {
			continue // never let an ambient variable redirect the repository or password
		}
		env = append(env, kv)
	}
	env = append(env, "RESTIC_REPOSITORY="+r.URL, "RESTIC_PROGRESS_FPS=0.2")
	if r.PasswordCommand != "" {
		env = append(env, "RESTIC_PASSWORD_COMMAND="+r.PasswordCommand)
	} else {
		env = append(env, "RESTIC_PASSWORD="+r.Password)
	}
	env = append(env, r.Env...)
	return env, nil
}

// globalArgs are the arguments every command gets.
func (r *Repo) globalArgs(json bool) []string {
	var a []string
	if json {
		a = append(a, "--json")
	}
	if r.CacheDir == "" {
		a = append(a, "--no-cache")
	} else {
		a = append(a, "--cache-dir", r.CacheDir)
	}
	if r.RetryLock > 0 {
		a = append(a, "--retry-lock", r.RetryLock.String())
	}
	for _, o := range r.Options {
		a = append(a, "-o", o)
	}
	return a
}

const keepStderrLines = 15

// ansiRe matches terminal control sequences restic emits even when not on a terminal.
var ansiRe = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// run runs `restic <sub> <global> <args>` and returns its standard output. extraEnv is added
// to restic's environment. stdout, when non-nil, receives the output instead of the buffer.
func (r *Repo) run(ctx context.Context, sub string, args []string, json bool, extraEnv []string, stdout io.Writer, onLine func([]byte)) ([]byte, error) {
	env, err := r.env()
	if err != nil {
		return nil, err
	}
	full := append([]string{sub}, r.globalArgs(json)...)
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, r.Bin, full...)
	cmd.Env = append(env, extraEnv...)
	// On cancellation restic gets SIGINT first, so it removes its lock and stops cleanly.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 15 * time.Second
	if r.StopGrace > 0 {
		cmd.WaitDelay = r.StopGrace
	}
	var out bytes.Buffer
	var outPipe io.ReadCloser
	if stdout != nil {
		cmd.Stdout = stdout
	} else {
		outPipe, err = cmd.StdoutPipe()
		if err != nil {
			return nil, fmt.Errorf("restic %s: %w", sub, err)
		}
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("restic %s: %w", sub, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("restic %s: start %s: %w (install it with tools.Ensure or set ZOPS_RESTIC)", sub, r.Bin, err)
	}
	var wg sync.WaitGroup
	var tail []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(errPipe)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := ansiRe.ReplaceAllString(sc.Text(), "")
			if r.Log != nil {
				fmt.Fprintln(r.Log, line)
			}
			tail = append(tail, line)
			if len(tail) > keepStderrLines {
				tail = tail[1:]
			}
		}
		_, _ = io.Copy(io.Discard, errPipe)
	}()
	if outPipe != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(outPipe)
			sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
			for sc.Scan() {
				line := sc.Bytes()
				if onLine != nil {
					onLine(line)
				}
				out.Write(line)
				out.WriteByte('\n')
			}
			_, _ = io.Copy(io.Discard, outPipe)
		}()
	}
	wg.Wait()
	werr := cmd.Wait()
	if werr == nil {
		return out.Bytes(), nil
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		xe := &ExitError{Command: sub, Code: ee.ExitCode(), Stderr: strings.Join(errorLines(tail), "\n")}
		if ctx.Err() != nil {
			return out.Bytes(), fmt.Errorf("restic %s stopped: %w (job deadline ZOPS_BACKUP_TIMEOUT, or S3 too slow/unreachable): %w", sub, ctx.Err(), xe)
		}
		return out.Bytes(), xe
	}
	if ctx.Err() != nil {
		return out.Bytes(), fmt.Errorf("restic %s: %w", sub, ctx.Err())
	}
	return out.Bytes(), fmt.Errorf("restic %s: %w", sub, werr)
}

// errorLines keeps stderr lines that explain a failure; JSON progress never lands on stderr.
func errorLines(tail []string) []string {
	var out []string
	for _, l := range tail {
		ll := strings.ToLower(l)
		if strings.Contains(ll, "fatal") || strings.Contains(ll, "error") || strings.Contains(ll, "lock") ||
			strings.Contains(ll, "wrong password") || strings.Contains(ll, "does not exist") || strings.Contains(ll, "unable") ||
			strings.Contains(ll, "failed") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return tail
	}
	return out
}

// Exists reports whether the repository has been initialised.
func (r *Repo) Exists(ctx context.Context) (bool, error) {
	q := *r
	q.Log = nil // a missing repository is an answer here, not an error worth showing
	_, err := q.run(ctx, "cat", []string{"config"}, false, nil, io.Discard, nil)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, ErrNoRepository) {
		return false, nil
	}
	return false, err
}

// Init creates the repository.
func (r *Repo) Init(ctx context.Context) error {
	_, err := r.run(ctx, "init", nil, true, nil, nil, nil)
	return err
}

// EnsureInit creates the repository unless it exists, and reports whether it did.
func (r *Repo) EnsureInit(ctx context.Context) (bool, error) {
	ok, err := r.Exists(ctx)
	if err != nil || ok {
		return false, err
	}
	return true, r.Init(ctx)
}

// BackupOptions configures one `restic backup`.
type BackupOptions struct {
	Tags []string
	Host string
	// Paths are backed up as files; or, with Command set, the command's standard output is
	// stored as StdinFilename (--stdin-from-command): when the command exits non-zero restic
	// fails and saves no snapshot.
	Paths         []string
	Command       []string
	StdinFilename string
	// CommandEnv is added to restic's environment and so reaches Command (PG* variables).
	CommandEnv []string
	// Excludes are --exclude patterns for Paths.
	Excludes []string
	// SkipIfUnchanged saves no new snapshot when nothing changed since the parent
	// (--skip-if-unchanged); the summary then has an empty SnapshotID.
	SkipIfUnchanged bool
	OnStatus        func(BackupStatus)
}

// Args returns the backup arguments (after the global ones); exported for tests and dry runs.
func (o BackupOptions) Args() ([]string, error) {
	var a []string
	for _, t := range o.Tags {
		a = append(a, "--tag", t)
	}
	if o.Host != "" {
		a = append(a, "--host", o.Host)
	}
	if o.SkipIfUnchanged {
		a = append(a, "--skip-if-unchanged")
	}
	for _, e := range o.Excludes {
		a = append(a, "--exclude", e)
	}
	switch {
	case len(o.Command) > 0 && len(o.Paths) > 0:
		return nil, errors.New("restic backup: give Paths or Command, not both")
	case len(o.Command) > 0:
		name := o.StdinFilename
		if name == "" {
			name = "stdin"
		}
		a = append(a, "--stdin-from-command", "--stdin-filename", name, "--", "env")
		// The command must not see the repository password or the S3 secret.
		for _, v := range secretEnv {
			a = append(a, "-u", v)
		}
		a = append(a, "--")
		a = append(a, o.Command...)
	case len(o.Paths) > 0:
		a = append(a, "--")
		a = append(a, o.Paths...)
	default:
		return nil, errors.New("restic backup: nothing to back up (no Paths, no Command)")
	}
	return a, nil
}

// Backup runs `restic backup --json` and returns its summary.
func (r *Repo) Backup(ctx context.Context, o BackupOptions) (BackupSummary, error) {
	args, err := o.Args()
	if err != nil {
		return BackupSummary{}, err
	}
	var onLine func([]byte)
	if o.OnStatus != nil {
		onLine = func(line []byte) {
			var s BackupStatus
			if json.Unmarshal(line, &s) == nil && s.MessageType == "status" {
				o.OnStatus(s)
			}
		}
	}
	out, err := r.run(ctx, "backup", args, true, o.CommandEnv, nil, onLine)
	if err != nil {
		return BackupSummary{}, err
	}
	sum, errs, perr := parseBackup(out, nil)
	if perr != nil {
		return sum, fmt.Errorf("restic backup: %w", perr)
	}
	if len(errs) > 0 {
		return sum, fmt.Errorf("restic backup: %s during %s: %w", errs[0].Error.Message, errs[0].During, ErrPartialSource)
	}
	return sum, nil
}

// Filter selects snapshots.
type Filter struct {
	Tags   []string // all of them (restic --tag a,b)
	Host   string
	Latest int // the newest N per group (0 = all)
}

func (f Filter) args() []string {
	var a []string
	if len(f.Tags) > 0 {
		a = append(a, "--tag", strings.Join(f.Tags, ","))
	}
	if f.Host != "" {
		a = append(a, "--host", f.Host)
	}
	if f.Latest > 0 {
		a = append(a, "--latest", fmt.Sprint(f.Latest))
	}
	return a
}

// Snapshots lists snapshots, oldest first.
func (r *Repo) Snapshots(ctx context.Context, f Filter) ([]Snapshot, error) {
	out, err := r.run(ctx, "snapshots", f.args(), true, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	var snaps []Snapshot
	if err := json.Unmarshal(bytes.TrimSpace(out), &snaps); err != nil {
		return nil, fmt.Errorf("restic snapshots: %w: %v", ErrBadOutput, err)
	}
	return snaps, nil
}

// Latest returns the newest snapshot matching f, or ErrNoSnapshot.
func (r *Repo) Latest(ctx context.Context, f Filter) (Snapshot, error) {
	snaps, err := r.Snapshots(ctx, f)
	if err != nil {
		return Snapshot{}, err
	}
	if len(snaps) == 0 {
		return Snapshot{}, fmt.Errorf("%w (tags %v, host %q)", ErrNoSnapshot, f.Tags, f.Host)
	}
	best := snaps[0]
	for _, s := range snaps[1:] {
		if s.Time.After(best.Time) {
			best = s
		}
	}
	return best, nil
}

// ForgetOptions configures `restic forget`: either explicit IDs or a keep policy.
type ForgetOptions struct {
	IDs       []string
	KeepDaily int
	KeepLast  int
	// KeepWithin keeps every snapshot younger than this (--keep-within, whole hours).
	KeepWithin time.Duration
	Filter     Filter
	GroupBy    string // e.g. "host,tags"; empty = restic's default
	Prune      bool
}

// Args returns the forget arguments.
func (o ForgetOptions) Args() ([]string, error) {
	var a []string
	if len(o.IDs) == 0 && o.KeepDaily <= 0 && o.KeepLast <= 0 && o.KeepWithin <= 0 {
		return nil, errors.New("restic forget: no IDs and no keep policy (refusing to forget everything)")
	}
	if o.KeepDaily > 0 {
		a = append(a, "--keep-daily", fmt.Sprint(o.KeepDaily))
	}
	if o.KeepLast > 0 {
		a = append(a, "--keep-last", fmt.Sprint(o.KeepLast))
	}
	if o.KeepWithin > 0 {
		a = append(a, "--keep-within", fmt.Sprintf("%dh", int(o.KeepWithin.Hours()+0.5)))
	}
	if o.GroupBy != "" {
		a = append(a, "--group-by", o.GroupBy)
	}
	f := o.Filter
	f.Latest = 0
	a = append(a, f.args()...)
	if o.Prune {
		a = append(a, "--prune")
	}
	a = append(a, o.IDs...)
	return a, nil
}

// Forget runs `restic forget --json`.
func (r *Repo) Forget(ctx context.Context, o ForgetOptions) ([]ForgetGroup, error) {
	args, err := o.Args()
	if err != nil {
		return nil, err
	}
	out, err := r.run(ctx, "forget", args, true, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	// With --prune, prune's own lines follow the forget JSON array; read only the array.
	var groups []ForgetGroup
	trimmed := bytes.TrimSpace(out)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		if err := dec.Decode(&groups); err != nil {
			return nil, fmt.Errorf("restic forget: %w: %v", ErrBadOutput, err)
		}
	}
	return groups, nil
}

// CheckOptions configures `restic check`.
type CheckOptions struct {
	// ReadDataSubset is passed as --read-data-subset (e.g. "3/7"); empty reads no pack data.
	ReadDataSubset string
}

// Check runs `restic check`; a damaged repository returns an error.
func (r *Repo) Check(ctx context.Context, o CheckOptions) (CheckSummary, error) {
	var args []string
	if o.ReadDataSubset != "" {
		args = append(args, "--read-data-subset", o.ReadDataSubset)
	}
	out, err := r.run(ctx, "check", args, true, nil, nil, nil)
	var sum CheckSummary
	_, perr := parseSummary(out, &sum)
	if err != nil {
		return sum, err
	}
	if perr != nil {
		return sum, fmt.Errorf("restic check: %w", perr)
	}
	if sum.NumErrors > 0 {
		return sum, fmt.Errorf("restic check: %d errors: %w", sum.NumErrors, ErrFatal)
	}
	return sum, nil
}

// Restore restores snapshot id (or "latest") into target; include limits it to some paths.
func (r *Repo) Restore(ctx context.Context, id, target string, include ...string) (RestoreSummary, error) {
	args := []string{"--target", target}
	for _, inc := range include {
		args = append(args, "--include", inc)
	}
	args = append(args, id)
	out, err := r.run(ctx, "restore", args, true, nil, nil, nil)
	var sum RestoreSummary
	if err != nil {
		return sum, err
	}
	if _, perr := parseSummary(out, &sum); perr != nil {
		return sum, fmt.Errorf("restic restore: %w", perr)
	}
	return sum, nil
}

// Dump writes the file path of snapshot id to w.
func (r *Repo) Dump(ctx context.Context, id, path string, w io.Writer) error {
	_, err := r.run(ctx, "dump", []string{id, path}, false, nil, w, nil)
	return err
}

// Ls lists the files of snapshot id.
func (r *Repo) Ls(ctx context.Context, id string) ([]Node, error) {
	out, err := r.run(ctx, "ls", []string{id}, true, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return parseLs(out)
}

// Unlock removes stale locks (restic unlock only removes locks of dead processes).
func (r *Repo) Unlock(ctx context.Context) error {
	_, err := r.run(ctx, "unlock", nil, false, nil, io.Discard, nil)
	return err
}

// List returns the IDs of repository objects of one type (`restic list locks|snapshots|...`).
func (r *Repo) List(ctx context.Context, kind string) ([]string, error) {
	var buf bytes.Buffer
	if _, err := r.run(ctx, "list", []string{kind}, false, nil, &buf, nil); err != nil {
		return nil, err
	}
	return strings.Fields(buf.String()), nil
}
