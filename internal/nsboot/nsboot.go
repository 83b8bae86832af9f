// Package nsboot boots a root filesystem with real systemd as PID 1 in its own PID, mount, UTS
// and IPC namespaces (and optionally its own network namespace), and reaches it with nsenter.
// systemd-nspawn fails on these machines; this is the recipe that works (shared/DESIGN.md
// "Facts checked"): private mounts, proc and sysfs in the root, /sys/fs/cgroup and /dev bound
// from the host, a private /dev/shm (sharing the host's broke a PostgreSQL running outside), tmpfs
// /run and /tmp, the root bound onto itself (else sandboxed units fail with 226/NAMESPACE), then
// `exec chroot ROOT /lib/systemd/systemd --system`. Killing PID 1 ends everything in it; mounts
// vanish with the mount namespace.
package nsboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Net gives the machine its own network namespace joined to the host by a veth pair: its
// loopback ports (PostgreSQL 5432, Redis 6379, the API's 8080) then never clash with the host's,
// and the host reaches it at PeerAddr. Services on the host's 127.0.0.1 are not reachable from
// inside; forward what the machine needs to HostAddr (see Forward).
type Net struct {
	Name     string // netns name, e.g. zops-box-1
	HostIf   string // host end of the veth pair
	PeerIf   string // the machine's end
	HostAddr string // e.g. 10.77.60.1 (a /30 with PeerAddr)
	PeerAddr string // e.g. 10.77.60.2

	isUp bool
}

// Options of a boot.
type Options struct {
	Root string
	// Hostname is set in the machine's UTS namespace before systemd starts; systemd then sets
	// the root's /etc/hostname if it has one.
	Hostname string
	Net      *Net // nil: share the host's network namespace
	// RunUnits are unit files or drop-ins written to the machine's /run/systemd/system before
	// systemd starts (path relative to it, e.g. "zops-backup.service.d/local.conf"): runtime
	// settings of this boot only, never part of the image.
	RunUnits map[string]string
	// Mask lists units masked for this boot (in /run), e.g. the gettys: /dev/console is the
	// host's.
	Mask    []string
	Console io.Writer // systemd's console output (nil: discarded)
}

// DefaultMask are units that make no sense in a booted root on a shared host.
var DefaultMask = []string{"console-getty.service", "getty@tty1.service", "serial-getty@ttyS0.service", "getty.target", "systemd-firstboot.service"}

// Machine is a booted root.
type Machine struct {
	Root   string
	Net    *Net
	ownNet bool // Boot brought the network up, so Stop takes it down
	cmd    *exec.Cmd
	pid    int // systemd, as seen from the host
	done   chan struct{}
	err    error
	runD   string
	once   sync.Once
	start  time.Time
}

// ErrBoot means systemd did not come up.
var ErrBoot = errors.New("boot failed")

const bootScript = `set -e
R=$1
mount --make-rprivate /
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount --rbind /sys/fs/cgroup "$R/sys/fs/cgroup"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$R/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"
if [ -n "$2" ]; then mkdir -p "$R/run/systemd/system" && cp -a "$2/." "$R/run/systemd/system/"; fi
hostname "$3"
exec chroot "$R" /usr/bin/env -i container=zops-nsboot PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd --system --show-status=no --log-target=journal
`

// Boot starts systemd in root and returns once PID 1 exists (use WaitRunning for the boot to
// finish). Cancel ctx or call Stop to end it.
func Boot(ctx context.Context, o Options) (*Machine, error) {
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(root, "lib", "systemd", "systemd")); err != nil {
		return nil, fmt.Errorf("%w: %s has no /lib/systemd/systemd (install systemd and systemd-sysv in the root)", ErrBoot, root)
	}
	if o.Hostname == "" {
		o.Hostname = "zmanim-box"
	}
	m := &Machine{Root: root, Net: o.Net, done: make(chan struct{}), start: time.Now()}
	if o.Mask == nil {
		o.Mask = DefaultMask
	}
	if len(o.RunUnits) > 0 || len(o.Mask) > 0 {
		if m.runD, err = os.MkdirTemp("", "nsboot-run-"); err != nil {
			return nil, err
		}
		for _, u := range o.Mask {
			if err := os.Symlink("/dev/null", filepath.Join(m.runD, u)); err != nil {
				return nil, err
			}
		}
		for name, body := range o.RunUnits {
			p := filepath.Join(m.runD, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				return nil, err
			}
		}
	}
	argv := []string{"unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--kill-child", "sh", "-c", bootScript, "nsboot", root, m.runD, o.Hostname}
	if o.Net != nil && !o.Net.isUp {
		m.ownNet = true
		if err := o.Net.Up(ctx); err != nil {
			m.cleanup()
			return nil, err
		}
	}
	if o.Net != nil {
		// nsenter, not `ip netns exec`: the latter remounts /sys for the namespace, which hides
		// the host's /sys/fs/cgroup that systemd needs (it then hangs before starting anything).
		argv = append([]string{"nsenter", "--net=/run/netns/" + o.Net.Name}, argv...)
	}
	// The machine must outlive the caller's request context only through Stop: tie it to ctx
	// by a watcher rather than exec.CommandContext (which would SIGKILL without a clean stop).
	m.cmd = exec.Command(argv[0], argv[1:]...)
	con := o.Console
	if con == nil {
		con = io.Discard
	}
	m.cmd.Stdout, m.cmd.Stderr = con, con
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		m.cleanup()
		return nil, fmt.Errorf("%w: start %s: %v", ErrBoot, argv[0], err)
	}
	go func() {
		m.err = m.cmd.Wait()
		close(m.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			m.Stop(context.Background())
		case <-m.done:
		}
	}()
	// Find systemd: the one process whose command is systemd under unshare.
	deadline := time.Now().Add(10 * time.Second)
	for m.pid == 0 {
		if pid := findSystemd(m.cmd.Process.Pid); pid != 0 {
			m.pid = pid
			break
		}
		select {
		case <-m.done:
			m.cleanup()
			return nil, fmt.Errorf("%w: the namespace exited before systemd started: %v", ErrBoot, m.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.Stop(context.Background())
			return nil, fmt.Errorf("%w: no systemd process after 10s", ErrBoot)
		}
	}
	return m, nil
}

// findSystemd walks the process tree under pid for the systemd that replaced the boot shell.
func findSystemd(pid int) int {
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); err == nil && strings.TrimSpace(string(comm)) == "systemd" {
			return p
		}
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, t := range tasks {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", p, t.Name()))
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					queue = append(queue, c)
				}
			}
		}
	}
	return 0
}

// PID is systemd's process id on the host.
func (m *Machine) PID() int { return m.pid }

// Done is closed when the machine has stopped.
func (m *Machine) Done() <-chan struct{} { return m.done }

// Command returns a command that runs argv inside the machine (its namespaces and root).
func (m *Machine) Command(ctx context.Context, argv ...string) *exec.Cmd {
	// -r -w: the root and working directory of systemd itself. Entering a mount namespace resets
	// the root to that namespace's real root, so `chroot m.Root` would name the wrong path when
	// this process is itself in a chroot (bench:fresh runs the tests inside one).
	args := []string{"-t", strconv.Itoa(m.pid), "-m", "-p", "-u", "-i", "-r", "-w"}
	if m.Net != nil {
		args = append(args, "-n")
	}
	args = append(args, "--", "/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
	return exec.CommandContext(ctx, "nsenter", append(args, argv...)...)
}

// Exec runs argv inside the machine and returns its combined output; a non-zero exit is an
// error carrying the output.
func (m *Machine) Exec(ctx context.Context, argv ...string) (string, error) {
	var b bytes.Buffer
	cmd := m.Command(ctx, argv...)
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	if err != nil {
		return b.String(), fmt.Errorf("in the machine: %s: %w\n%s", strings.Join(argv, " "), err, strings.TrimSpace(b.String()))
	}
	return b.String(), nil
}

// Systemctl runs systemctl inside the machine.
func (m *Machine) Systemctl(ctx context.Context, args ...string) (string, error) {
	return m.Exec(ctx, append([]string{"systemctl", "--no-pager"}, args...)...)
}

// Journal returns this boot's journal of a unit inside the machine ("" for all). A machine
// shares the host kernel's boot id, so boots are told apart by time, not by -b.
func (m *Machine) Journal(ctx context.Context, unit string) string {
	args := []string{"journalctl", "--no-pager", "-o", "short-iso", fmt.Sprintf("--since=@%d", m.start.Unix())}
	if unit != "" {
		args = append(args, "-u", unit)
	}
	out, _ := m.Exec(ctx, args...)
	return out
}

// WaitRunning waits until systemd has finished booting (running or degraded) and returns the
// state it reached.
func (m *Machine) WaitRunning(ctx context.Context, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		out, _ := m.Exec(ctx, "systemctl", "is-system-running")
		st := strings.TrimSpace(out)
		switch st {
		case "running", "degraded":
			return st, nil
		}
		select {
		case <-m.done:
			return st, fmt.Errorf("%w: systemd exited while booting: %v", ErrBoot, m.err)
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("%w: system state %q after %s", ErrBoot, st, timeout)
		}
	}
}

// Stop shuts the machine down cleanly (systemctl poweroff: services stop in order, PostgreSQL
// checkpoints) and kills what is left after 60 s; then removes the network namespace.
func (m *Machine) Stop(ctx context.Context) error {
	m.once.Do(func() {
		select {
		case <-m.done:
		default:
			if m.pid != 0 {
				// SIGRTMIN+4 asks systemd for a poweroff; in a PID namespace that ends PID 1.
				_ = syscall.Kill(m.pid, syscall.Signal(34+4))
			}
			select {
			case <-m.done:
			case <-time.After(60 * time.Second):
				if m.cmd.Process != nil {
					_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
				}
				if m.pid != 0 {
					_ = syscall.Kill(m.pid, syscall.SIGKILL)
				}
				<-m.done
			}
		}
		m.cleanup()
	})
	return nil
}

func (m *Machine) cleanup() {
	if m.Net != nil && m.ownNet {
		m.Net.Down(context.Background())
	}
	if m.runD != "" {
		os.RemoveAll(m.runD)
	}
}

func run(ctx context.Context, argv ...string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Up creates the namespace and the veth pair (Boot does it when not done yet; call it first to
// listen on HostAddr before the machine starts). Down removes them; Stop calls it.
func (n *Net) Up(ctx context.Context) error {
	if n.isUp {
		return nil
	}
	n.Down(ctx) // a previous run killed before its clean-up
	steps := [][]string{
		{"ip", "netns", "add", n.Name},
		{"ip", "link", "add", n.HostIf, "type", "veth", "peer", "name", n.PeerIf},
		{"ip", "link", "set", n.PeerIf, "netns", n.Name},
		{"ip", "addr", "add", n.HostAddr + "/30", "dev", n.HostIf},
		{"ip", "link", "set", n.HostIf, "up"},
		{"nsenter", "--net=/run/netns/" + n.Name, "ip", "addr", "add", n.PeerAddr + "/30", "dev", n.PeerIf},
		{"nsenter", "--net=/run/netns/" + n.Name, "ip", "link", "set", n.PeerIf, "up"},
		{"nsenter", "--net=/run/netns/" + n.Name, "ip", "link", "set", "lo", "up"},
		{"nsenter", "--net=/run/netns/" + n.Name, "ip", "route", "add", "default", "via", n.HostAddr},
	}
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			n.Down(ctx)
			return fmt.Errorf("network namespace %s: %w", n.Name, err)
		}
	}
	n.isUp = true
	return nil
}

// Down removes the namespace and the veth pair.
func (n *Net) Down(ctx context.Context) {
	n.isUp = false
	_ = run(ctx, "ip", "link", "del", n.HostIf)
	_ = run(ctx, "ip", "netns", "del", n.Name)
}
