package box

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Dep is a unit the API requires (Requires=/After= postgresql, redis): it must answer before a
// process is started.
type Dep struct {
	Name  string
	Check func(ctx context.Context) error
}

// Options configure a Supervisor.
type Options struct {
	// Listener is the API socket (from systemd's LISTEN_FDS in production, opened by the
	// twin's daemon locally). It must be a *net.TCPListener.
	Listener net.Listener
	// Binary is the path started on each (re)start, normally the `current` symlink; it is
	// resolved at start so that a later symlink swap does not change a running process.
	Binary string
	// BeforeStart, when set, runs before Binary is resolved at every start (first start,
	// crash restart, reload): the on-box agent's onbox.RecoverPending, which puts `current`
	// back on the proven version when a deploy died before its health gate.
	BeforeStart func() error
	Args        []string // arguments of the binary, default ["serve"]
	// EnvFile is read at every start (KEY=VALUE lines), like systemd's EnvironmentFile=.
	EnvFile string
	// Unit holds Restart=, RestartSec=, TimeoutStartSec=, TimeoutStopSec= (ParseUnit).
	Unit   Unit
	Deps   []Dep
	RunDir string // notify sockets live here
	// Journal receives the processes' output, one line at a time, like journald.
	Journal io.Writer
	Logger  *slog.Logger
}

// State of the supervised service.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateFailed   = "failed"
	StateStopped  = "stopped"
)

// Process describes one API process.
type Process struct {
	PID     int       `json:"pid"`
	Version string    `json:"version"`
	Binary  string    `json:"binary"`
	Started time.Time `json:"started"`
}

// Status is a snapshot of the service.
type Status struct {
	State     string   `json:"state"`
	Active    *Process `json:"active,omitempty"`
	Restarts  int      `json:"restarts"`
	LastError string   `json:"last_error,omitempty"`
}

// Supervisor runs the API processes.
type Supervisor struct {
	opts   Options
	lnFile *os.File
	log    *slog.Logger

	reloadMu sync.Mutex // one start or reload at a time
	mu       sync.Mutex
	active   *child
	state    string
	restarts int
	lastErr  string
	recent   []time.Time // restart times, for the start limit
	seq      int
	logs     *ring
	closed   bool
	failed   chan error // receives once when the supervisor gives up (see Failed)
	failOnce sync.Once
}

// ErrStartLimit means the process failed too often in a short time (StartLimitBurst).
var ErrStartLimit = errors.New("start request repeated too quickly")

// New returns a supervisor; nothing is started until Start.
func New(o Options) (*Supervisor, error) {
	tl, ok := o.Listener.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("box supervisor needs a TCP listener, got %T", o.Listener)
	}
	f, err := tl.File()
	if err != nil {
		return nil, fmt.Errorf("box supervisor: socket fd: %w", err)
	}
	if len(o.Args) == 0 {
		o.Args = []string{"serve"}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Journal == nil {
		o.Journal = io.Discard
	}
	if err := os.MkdirAll(o.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("box supervisor: %w", err)
	}
	return &Supervisor{opts: o, lnFile: f, log: o.Logger, state: StateStopped, logs: newRing(400), failed: make(chan error, 1)}, nil
}

// Failed delivers the reason once the supervisor has given up on the API: past the start limit,
// or after a failure that Restart= does not restart. systemd would now mark the unit failed;
// zops-box exits non-zero on it so that systemd sees exactly that (and applies the unit's own
// Restart=). The twin's daemon keeps its supervisor, which a later reload can revive.
func (s *Supervisor) Failed() <-chan error { return s.failed }

func (s *Supervisor) fail(err error) {
	s.failOnce.Do(func() { s.failed <- err })
}

// Start starts the first process and waits until it reports ready.
func (s *Supervisor) Start(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.setState(StateStarting, "")
	c, err := s.spawn(ctx)
	if err != nil {
		s.setState(StateFailed, err.Error())
		return err
	}
	s.mu.Lock()
	s.active = c
	s.state = StateRunning
	s.mu.Unlock()
	go s.watch(c)
	return nil
}

// Reload starts the binary Options.Binary points to now, waits for it to be ready, then
// stops the previous process. If the new process fails to start, the previous one keeps
// serving and the error carries the new process's last output lines.
func (s *Supervisor) Reload(ctx context.Context) (Process, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	c, err := s.spawn(ctx)
	if err != nil {
		s.mu.Lock()
		s.lastErr = err.Error()
		s.mu.Unlock()
		return Process{}, err
	}
	s.mu.Lock()
	old := s.active
	s.active = c
	s.state = StateRunning
	s.lastErr = ""
	s.recent = nil
	s.mu.Unlock()
	go s.watch(c)
	if old != nil {
		s.log.Info("stopping previous process", "pid", old.proc.PID, "version", old.proc.Version)
		old.stop(s.opts.Unit.TimeoutStopSec)
	}
	return c.proc, nil
}

// Stop stops the active process (systemctl stop): SIGTERM, then SIGKILL after TimeoutStopSec.
func (s *Supervisor) Stop() {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.mu.Lock()
	c := s.active
	s.active = nil
	s.closed = true
	s.state = StateStopped
	s.mu.Unlock()
	if c != nil {
		c.stop(s.opts.Unit.TimeoutStopSec)
	}
}

// Status returns a snapshot.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{State: s.state, Restarts: s.restarts, LastError: s.lastErr}
	if s.active != nil {
		p := s.active.proc
		st.Active = &p
	}
	return st
}

// Logs returns the last n output lines of the API processes.
func (s *Supervisor) Logs(n int) []string { return s.logs.last(n) }

func (s *Supervisor) setState(state, errText string) {
	s.mu.Lock()
	s.state, s.lastErr = state, errText
	s.mu.Unlock()
}

// watch applies Restart=on-failure to the active process, with systemd's default start
// limit (5 starts within 10 s, then the unit is failed).
func (s *Supervisor) watch(c *child) {
	<-c.done
	s.mu.Lock()
	if s.active != c || s.closed || c.stopping.Load() {
		s.mu.Unlock()
		return
	}
	failed := c.exitErr != nil
	policy := s.opts.Unit.Restart
	if !(policy == "always" || (policy == "on-failure" && failed)) {
		s.state = StateStopped
		if failed {
			s.state, s.lastErr = StateFailed, c.exitErr.Error()
		}
		s.mu.Unlock()
		if failed {
			s.fail(fmt.Errorf("zmanim-api failed (Restart=%s): %w", policy, c.exitErr))
		}
		return
	}
	s.mu.Unlock()
	cause := c.exitErr
	for {
		if !s.allowRestart(cause) {
			s.fail(fmt.Errorf("zmanim-api: %w: %v", ErrStartLimit, cause))
			return
		}
		s.log.Warn("api exited; restarting", "pid", c.proc.PID, "err", fmt.Sprint(cause), "after", s.opts.Unit.RestartSec)
		time.Sleep(s.opts.Unit.RestartSec)
		s.reloadMu.Lock()
		s.mu.Lock()
		stale := s.active != c || s.closed
		s.mu.Unlock()
		if stale { // a reload or stop happened meanwhile
			s.reloadMu.Unlock()
			return
		}
		nc, err := s.spawn(context.Background())
		if err == nil {
			s.mu.Lock()
			s.active, s.state, s.lastErr = nc, StateRunning, ""
			s.mu.Unlock()
			s.reloadMu.Unlock()
			go s.watch(nc)
			return
		}
		s.reloadMu.Unlock()
		s.log.Error("restart failed", "err", err)
		cause = err
	}
}

// allowRestart counts a restart against the start limit; past it the service is failed.
func (s *Supervisor) allowRestart(cause error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var keep []time.Time
	for _, t := range s.recent {
		if now.Sub(t) < 10*time.Second {
			keep = append(keep, t)
		}
	}
	s.recent = append(keep, now)
	if len(s.recent) > 5 {
		s.state, s.lastErr = StateFailed, fmt.Sprintf("%v: %v", ErrStartLimit, cause)
		s.log.Error("api failed too often; giving up", "err", cause)
		return false
	}
	s.restarts++
	s.state, s.lastErr = StateStarting, fmt.Sprint(cause)
	return true
}

// child is one API process.
type child struct {
	proc     Process
	cmd      *exec.Cmd
	done     chan struct{}
	exitErr  error
	stopping atomicBool
}

type atomicBool struct {
	mu sync.Mutex
	v  bool
}

func (b *atomicBool) Store(v bool) { b.mu.Lock(); b.v = v; b.mu.Unlock() }
func (b *atomicBool) Load() bool   { b.mu.Lock(); defer b.mu.Unlock(); return b.v }

func (c *child) stop(timeout time.Duration) {
	c.stopping.Store(true)
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// spawn starts a process and waits for READY=1 (Type=notify), for it to exit, or for
// TimeoutStartSec.
func (s *Supervisor) spawn(ctx context.Context) (*child, error) {
	for _, d := range s.opts.Deps {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := d.Check(dctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("dependency failed for zmanim-api: %s is not available: %w", d.Name, err)
		}
	}
	if s.opts.BeforeStart != nil {
		if err := s.opts.BeforeStart(); err != nil {
			s.log.Warn("before start", "err", err)
		}
	}
	bin, err := filepath.EvalSymlinks(s.opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", s.opts.Binary, err)
	}
	env, err := readEnvFile(s.opts.EnvFile)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	sock := filepath.Join(s.opts.RunDir, fmt.Sprintf("notify-%d.sock", seq))
	_ = os.Remove(sock)
	nconn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	// The socket lives as long as the process: it reports READY=1 on it, and STOPPING=1 when
	// it drains at the next release (systemd's socket never goes away; a process that found
	// this one gone would log a failed sd_notify at every release).
	closeNotify := func() { nconn.Close(); os.Remove(sock) }
	started := false
	defer func() {
		if !started {
			closeNotify()
		}
	}()

	version := filepath.Base(filepath.Dir(bin))
	cmd := exec.Command(bin, s.opts.Args...)
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "LISTEN_FDS=1", "LISTEN_FDNAMES=zmanim-api", "NOTIFY_SOCKET=" + sock}, env...)
	cmd.ExtraFiles = []*os.File{s.lnFile}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	// The new process starts below the serving one's priority and gets ours back when ready
	// (StartNice), where we may give it back.
	base := niceness()
	low := base < StartNice && canRaiseTo(base)
	if low {
		err = startLow(StartNice, cmd.Start)
	} else {
		err = cmd.Start()
	}
	s.restoreNonblock()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{}), proc: Process{PID: cmd.Process.Pid, Version: version, Binary: bin, Started: time.Now()}}
	tag := fmt.Sprintf("zmanim-api[%d] %s: ", c.proc.PID, version)
	var own []string
	var ownMu sync.Mutex
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.logs.add(tag + line)
			ownMu.Lock()
			own = append(own, line)
			if len(own) > 50 {
				own = own[1:]
			}
			ownMu.Unlock()
			fmt.Fprintln(s.opts.Journal, tag+line)
		}
	}()
	started = true
	go func() {
		<-copied
		c.exitErr = cmd.Wait()
		closeNotify()
		close(c.done)
	}()
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		var once sync.Once
		for {
			n, _, err := nconn.ReadFromUnix(buf)
			if err != nil {
				return // closed when the process exited
			}
			for _, l := range strings.Split(string(buf[:n]), "\n") {
				if l == "READY=1" {
					once.Do(func() { close(ready) })
				}
			}
		}
	}()
	lastLines := func() string {
		ownMu.Lock()
		defer ownMu.Unlock()
		return strings.Join(own, "\n")
	}
	timeout := s.opts.Unit.TimeoutStartSec
	deadline := time.After(timeout)
	// The low priority lasts StartLowFor at most: on a box busy serving, a nice 10 process
	// gets a sliver of the CPU and took up to 24 s to get ready in a test, where a release
	// should cost a second.
	var restore <-chan time.Time
	if low {
		restore = time.After(StartLowFor)
	}
	raise := func() {
		if low {
			low = false
			if err := setNice(c.proc.PID, base); err != nil {
				s.log.Warn("could not restore the api's priority", "pid", c.proc.PID, "nice", base, "err", err)
			}
		}
	}
	for {
		select {
		case <-restore:
			raise()
			continue
		case <-ready:
			raise()
			s.log.Info("api ready", "pid", c.proc.PID, "version", version)
			return c, nil
		case <-c.done:
			<-copied
			return nil, &StartError{Version: version, Err: fmt.Errorf("exited before it was ready: %v", c.exitErr), Logs: lastLines()}
		case <-deadline:
			c.stop(time.Second)
			return nil, &StartError{Version: version, Err: fmt.Errorf("not ready after %s (TimeoutStartSec)", timeout), Logs: lastLines()}
		case <-ctx.Done():
			c.stop(time.Second)
			return nil, ctx.Err()
		}
	}
}

// restoreNonblock sets O_NONBLOCK again on the API socket. os/exec hands ExtraFiles to the
// child through (*os.File).Fd, which clears O_NONBLOCK on the socket's open file description
// — shared by every process holding the socket. A new API process sets it again when it
// takes the socket (net.FileListener), but one that exits before that (a failed release)
// leaves it blocking: the running process's accept loop then sits in a blocking accept4,
// never sees its listener closed, and cannot be stopped short of SIGKILL.
func (s *Supervisor) restoreNonblock() {
	rc, err := s.lnFile.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { _ = syscall.SetNonblock(int(fd), true) })
}

// StartError is a process that did not become ready; Logs holds its last output lines.
type StartError struct {
	Version string
	Err     error
	Logs    string
}

func (e *StartError) Error() string {
	return fmt.Sprintf("zmanim-api %s failed to start: %v\n--- last log lines ---\n%s", e.Version, e.Err, e.Logs)
}

func (e *StartError) Unwrap() error { return e.Err }

// readEnvFile parses KEY=VALUE lines (systemd EnvironmentFile= syntax without line
// continuations); a missing file is an error, as with a plain EnvironmentFile=.
func readEnvFile(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("environment file: %w", err)
	}
	var env []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		env = append(env, strings.TrimSpace(k)+"="+v)
	}
	return env, nil
}

// ring keeps the last lines of output.
type ring struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func newRing(n int) *ring { return &ring{max: n} }

func (r *ring) add(l string) {
	r.mu.Lock()
	r.lines = append(r.lines, l)
	if len(r.lines) > r.max {
		r.lines = r.lines[len(r.lines)-r.max:]
	}
	r.mu.Unlock()
}

func (r *ring) last(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= 0 || n > len(r.lines) {
		n = len(r.lines)
	}
	return append([]string(nil), r.lines[len(r.lines)-n:]...)
}
