package twin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shtetl/zmanim-ops/internal/twinstate"
)

// proc starts and stops a detached background process with a pid file and a log file in the
// state directory, so that it outlives the mage invocation that started it.
type proc struct {
	name string
	st   twinstate.Dir
}

// pid returns the recorded pid if that process is alive.
func (p proc) pid() (int, bool) {
	b, err := os.ReadFile(p.st.PID(p.name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, false
	}
	// A zombie or a recycled pid of another program does not count.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
			return 0, false
		}
	}
	return pid, true
}

// start runs cmd detached (own session), output appended to the component's log.
func (p proc) start(cmd *exec.Cmd) error {
	if err := os.MkdirAll(p.st.Path("logs"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(p.st.Path("run"), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(p.st.Log(p.name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "---- %s starting %s\n", time.Now().UTC().Format(time.RFC3339), cmd.Path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	if err := os.WriteFile(p.st.PID(p.name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return err
	}
	// Reap it if it dies while we are still running, so pid() does not see a zombie.
	go func() { _ = cmd.Wait() }()
	return nil
}

// stop sends SIGTERM, waits up to timeout, then SIGKILL.
func (p proc) stop(timeout time.Duration) error {
	pid, ok := p.pid()
	if !ok {
		_ = os.Remove(p.st.PID(p.name))
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, ok := p.pid(); !ok {
			_ = os.Remove(p.st.PID(p.name))
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(100 * time.Millisecond)
	_ = os.Remove(p.st.PID(p.name))
	return nil
}

// tail returns the last n lines of the component's log.
func (p proc) tail(n int) string { return tailFile(p.st.Log(p.name), n) }

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls check until it succeeds, the process dies, or the timeout passes.
func waitFor(ctx context.Context, p proc, timeout time.Duration, check func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		var perm permanent
		if errors.As(last, &perm) {
			return fmt.Errorf("%s: %w", p.name, perm.error)
		}
		if _, alive := p.pid(); !alive {
			return fmt.Errorf("%s exited during start: %v\n--- %s ---\n%s", p.name, last, p.st.Log(p.name), p.tail(15))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v\n--- %s ---\n%s", p.name, timeout, last, p.st.Log(p.name), p.tail(15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// portFree reports an error naming the port and the fix when something listens on it.
func portFree(host string, port int, field string) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("twin.ports.%s: port %d on %s is in use by another program (see `ss -ltnp sport = :%d`); stop it or set another port under environments.local.twin.ports in zmanim-ops.yaml", field, port, host, port)
	}
	return ln.Close()
}

func tcpUp(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// lock serializes twin:up, twin:down and twin:reset across processes (several terminals or
// test runs may start the twin at once). It blocks until the lock is free.
func (t *Twin) lock(out io.Writer) (func(), error) {
	if err := os.MkdirAll(string(t.st), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(string(t.st), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintln(out, "twin: waiting for another twin:up/down in this state directory")
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock twin state: %w", err)
		}
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
