// Package fresh checks the README's promise on a fresh machine: it clones the committed HEAD of
// the repository into a brand-new Debian 12 root (debootstrap, cached once as a base and copied
// per run) that has only Go and git, with empty Go and tool caches, and runs the README's two
// commands exactly, as root, inside that root, timing each and counting failed tests.
//
// The root runs in its own network namespace (a veth pair with NAT to the package registries)
// so its twin binds the same loopback ports as the shared twin without clashing, and in private
// mount and PID namespaces so every process it starts ends with it.
package fresh

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Commands are the README's quick start, run in this order inside the root.
var Commands = []string{"go tool mage release", "go tool mage test"}

// Base is what a fresh machine has before the README: Debian 12 with git to clone and the CA
// certificates every HTTPS download needs (Go comes from its tarball, copied in separately).
var Base = []string{"ca-certificates", "git"}

// Options configure one run.
type Options struct {
	Repo     string        // repository to clone (its committed HEAD of Branch)
	Branch   string        // default main
	GoRoot   string        // Go installation copied in (default /usr/local/go)
	CacheDir string        // holds the debootstrapped base (tools.CacheDir()/fresh)
	WorkDir  string        // the root of this run (default /var/tmp/zops-fresh)
	Mirror   string        // Debian mirror (default http://deb.debian.org/debian)
	Only     string        // "release" runs only the first command (quick mode)
	Keep     bool          // keep the root after the run for inspection
	Timeout  time.Duration // per command (default 90m, CI's limit)
	Out      io.Writer
}

// Result is the outcome of one run.
type Result struct {
	ReleaseSeconds float64
	ReleaseExit    int
	TestSeconds    float64
	TestExit       int
	TestRan        bool
	FailedTests    []string // top-level tests and packages that failed
}

// Line is the benchmark's last line.
func (r Result) Line() string {
	test := "skipped"
	failed := "-"
	if r.TestRan {
		test = strconv.FormatFloat(r.TestSeconds, 'f', 0, 64)
		failed = strconv.Itoa(len(r.FailedTests))
	}
	return fmt.Sprintf("fresh: release_s=%.0f test_s=%s failed_tests=%s release_exit=%d test_exit=%d",
		r.ReleaseSeconds, test, failed, r.ReleaseExit, r.TestExit)
}

func (o *Options) defaults() {
	if o.Branch == "" {
		o.Branch = "main"
	}
	if o.GoRoot == "" {
		o.GoRoot = "/usr/local/go"
	}
	if o.WorkDir == "" {
		o.WorkDir = "/var/tmp/zops-fresh"
	}
	if o.Mirror == "" {
		o.Mirror = "http://deb.debian.org/debian"
	}
	if o.Timeout == 0 {
		o.Timeout = 90 * time.Minute
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// ErrNotRoot is returned when the bench cannot create namespaces and roots.
var ErrNotRoot = errors.New("bench:fresh needs root (debootstrap, namespaces, NAT)")

// Run builds the fresh root, runs the commands and returns their timings.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	var res Result
	if os.Geteuid() != 0 {
		return res, ErrNotRoot
	}
	if o.Repo == "" {
		return res, errors.New("fresh: no repository to clone")
	}
	logf := func(format string, a ...any) { fmt.Fprintf(o.Out, "fresh: "+format+"\n", a...) }

	base, err := ensureBase(ctx, o, logf)
	if err != nil {
		return res, err
	}
	root := filepath.Join(o.WorkDir, "root")
	if err := os.RemoveAll(o.WorkDir); err != nil {
		return res, fmt.Errorf("fresh: remove the previous root: %w", err)
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return res, fmt.Errorf("fresh: %w", err)
	}
	if !o.Keep {
		defer os.RemoveAll(o.WorkDir)
	}
	start := time.Now()
	if err := run(ctx, nil, "cp", "-a", "--reflink=auto", base, root); err != nil {
		return res, fmt.Errorf("fresh: copy the base root: %w", err)
	}
	if err := run(ctx, nil, "cp", "-a", o.GoRoot, filepath.Join(root, "usr/local/go")); err != nil {
		return res, fmt.Errorf("fresh: copy Go: %w", err)
	}
	repo := filepath.Join(root, "root", "zmanim-ops")
	if err := run(ctx, nil, "git", "clone", "-q", "--branch", o.Branch, "file://"+o.Repo, repo); err != nil {
		return res, fmt.Errorf("fresh: clone %s: %w", o.Repo, err)
	}
	head, _ := output(ctx, "git", "-C", repo, "log", "-1", "--format=%h %s")
	logf("root ready in %s: %s with Go from %s; cloned %s", time.Since(start).Round(time.Second), root, o.GoRoot, strings.TrimSpace(head))
	if err := copyFile("/etc/resolv.conf", filepath.Join(root, "etc/resolv.conf")); err != nil {
		return res, fmt.Errorf("fresh: %w", err)
	}
	if err := machineCAs(ctx, root); err != nil {
		return res, err
	}

	nw, err := newNetwork(ctx, logf)
	if err != nil {
		return res, err
	}
	defer nw.close(context.WithoutCancel(ctx))

	cmds := Commands
	if o.Only == "release" {
		cmds = cmds[:1]
	}
	// The log outlives the root (which goes unless Keep): <WorkDir>.log.
	logFile := filepath.Clean(o.WorkDir) + ".log"
	lf, err := os.Create(logFile)
	if err != nil {
		return res, err
	}
	defer lf.Close()
	logf("running %q in the root (log %s)", cmds, logFile)
	ctx, cancel := context.WithTimeout(ctx, o.Timeout*time.Duration(len(cmds)))
	defer cancel()
	// nsenter, not `ip netns exec`: the latter mounts a new /sys for the namespace, which hides
	// /sys/fs/cgroup from the root (found by internal/nsboot, whose booted systemd needs it).
	argv := append([]string{"nsenter", "--net=/run/netns/" + nw.ns}, enterArgv(root, cmds, machineEnvArgs())...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("fresh: enter the root: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	// Every line is stamped with the time since the commands started, in the log and on the
	// screen: where a fresh machine's minutes go is the point of this bench.
	res = parse(pr, stamped(io.MultiWriter(lf, o.Out), time.Now()))
	res.TestRan = len(cmds) > 1 && res.TestRan
	if err := <-done; err != nil && ctx.Err() != nil {
		return res, fmt.Errorf("fresh: timed out after %s: %w", o.Timeout, ctx.Err())
	}
	return res, nil
}

// marker lines written by the script in the root around each command.
var markerRe = regexp.MustCompile(`^@@fresh (\d+) exit=(\d+) seconds=([0-9.]+)$`)

// failRe matches a top-level failed test (subtests are indented) and a package that failed
// without a failing test (build failure, panic in TestMain, timeout).
var (
	failTestRe = regexp.MustCompile(`^--- FAIL: (\S+)`)
	failPkgRe  = regexp.MustCompile(`^FAIL\s+(\S+)\s+(\[[^\]]+\]|[0-9.]+s)`)
)

// parse copies the run's output to out, and reads the markers and test failures.
func parse(r io.Reader, out io.Writer) Result {
	var res Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	failedPkgs := map[string]bool{}
	var failedTests []string
	var pkgsWithTests = map[string]bool{}
	var pending []string // tests failed in the package being printed
	for sc.Scan() {
		line := sc.Text()
		if m := markerRe.FindStringSubmatch(line); m != nil {
			code, _ := strconv.Atoi(m[2])
			secs, _ := strconv.ParseFloat(m[3], 64)
			switch m[1] {
			case "0":
				res.ReleaseExit, res.ReleaseSeconds = code, secs
			case "1":
				res.TestExit, res.TestSeconds, res.TestRan = code, secs, true
			}
			fmt.Fprintf(out, "fresh: `%s` exit %d after %.0f s\n", Commands[mustAtoi(m[1])], code, secs)
			continue
		}
		fmt.Fprintln(out, line)
		if m := failTestRe.FindStringSubmatch(line); m != nil {
			pending = append(pending, m[1])
		}
		if m := failPkgRe.FindStringSubmatch(line); m != nil {
			if len(pending) > 0 {
				for _, t := range pending {
					failedTests = append(failedTests, m[1]+"."+t)
				}
				pkgsWithTests[m[1]] = true
			} else {
				failedPkgs[m[1]] = true
			}
			pending = nil
		}
	}
	for p := range failedPkgs {
		if !pkgsWithTests[p] {
			failedTests = append(failedTests, p)
		}
	}
	res.FailedTests = failedTests
	return res
}

func mustAtoi(s string) int { n, _ := strconv.Atoi(s); return n }

// stamper prefixes each line written to it with [mm:ss] since start.
type stamper struct {
	w     io.Writer
	start time.Time
	now   func() time.Time
}

func stamped(w io.Writer, start time.Time) io.Writer { return &stamper{w, start, time.Now} }

// Write takes whole lines (parse writes one per call).
func (s *stamper) Write(p []byte) (int, error) {
	d := s.now().Sub(s.start).Round(time.Second)
	if _, err := fmt.Fprintf(s.w, "[%02d:%02d] %s", int(d.Minutes()), int(d.Seconds())%60, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// enterArgv runs the commands in root: private mount and PID namespaces (everything the twin
// starts dies with the namespace), the root bind-mounted onto itself (so / is a mount point in
// the chroot, as on a machine: `ip netns exec` and systemd's sandboxing need that), proc, sys
// with the cgroup tree (a machine has it; a systemd booted by the tests needs it), dev and a
// private /dev/shm (PostgreSQL's shared memory must not be the host's), then chroot
// with a fresh login's environment.
func enterArgv(root string, cmds []string, env []string) []string {
	var body strings.Builder
	for i, c := range cmds {
		fmt.Fprintf(&body, "echo '$ %s'; s=$(date +%%s.%%N); %s; rc=$?; e=$(date +%%s.%%N); echo \"@@fresh %d exit=$rc seconds=$(echo \"$e - $s\" | awk '{print $1 - $3}')\"\n", c, c, i)
	}
	inner := "cd /root/zmanim-ops || exit 1\n" + body.String()
	outer := `set -e
R=$1
mount --make-rprivate /
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount --rbind /sys/fs/cgroup "$R/sys/fs/cgroup"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=1777,size=2g tmpfs "$R/dev/shm"
mount -t tmpfs tmpfs "$R/run"
ip link set lo up
script=$2
shift 2
exec chroot "$R" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb LANG=C.UTF-8 \
  PATH=/usr/local/go/bin:/root/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  "$@" /bin/bash -c "$script"
`
	return append([]string{"unshare", "--mount", "--pid", "--fork", "--kill-child", "sh", "-c", outer, "fresh-enter", root, inner}, env...)
}

// machineCAs carries this machine's own certificate authorities (an egress proxy's, in
// /usr/local/share/ca-certificates) into the root: a fresh machine on the same network has them,
// and without them no download succeeds. It is the machine's setup, not a step of the README.
func machineCAs(ctx context.Context, root string) error {
	cas, _ := filepath.Glob("/usr/local/share/ca-certificates/*.crt")
	if len(cas) == 0 {
		return nil
	}
	dst := filepath.Join(root, "usr/local/share/ca-certificates")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("fresh: %w", err)
	}
	for _, c := range cas {
		if err := copyFile(c, filepath.Join(dst, filepath.Base(c))); err != nil {
			return fmt.Errorf("fresh: %w", err)
		}
	}
	if err := run(ctx, nil, "chroot", root, "update-ca-certificates"); err != nil {
		return fmt.Errorf("fresh: trust the machine's CAs in the root: %w", err)
	}
	return nil
}

// machineEnv are the variables of this machine's environment passed into the root: where its
// programs find the CA bundle (curl, git, node, the AWS CLI). Only those set here are passed.
var machineEnv = []string{"SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO",
	"CURL_CA_BUNDLE", "AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE"}

func machineEnvArgs() []string {
	var out []string
	for _, k := range machineEnv {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// ensureBase returns the cached debootstrapped root, building it once (~1-2 min).
func ensureBase(ctx context.Context, o Options, logf func(string, ...any)) (string, error) {
	key := sha256.Sum256([]byte("bookworm minbase " + strings.Join(Base, ",") + " " + o.Mirror))
	dir := filepath.Join(o.CacheDir, "base-bookworm-"+hex.EncodeToString(key[:4]))
	if _, err := os.Stat(filepath.Join(dir, "etc", "debian_version")); err == nil {
		logf("base root cached in %s", dir)
		return dir, nil
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("fresh: %w", err)
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("fresh: %w", err)
	}
	logf("debootstrap bookworm into %s (once; ~1-2 min)", dir)
	start := time.Now()
	if err := run(ctx, o.Out, "debootstrap", "--variant=minbase", "--include="+strings.Join(Base, ","), "bookworm", tmp, o.Mirror); err != nil {
		return "", fmt.Errorf("fresh: debootstrap: %w", err)
	}
	// Debian's clean-up: no downloaded .debs in the base, the apt lists stay (a fresh cloud
	// image has them too, but the targets run apt-get update anyway).
	_ = os.RemoveAll(filepath.Join(tmp, "var/cache/apt/archives"))
	_ = os.MkdirAll(filepath.Join(tmp, "var/cache/apt/archives/partial"), 0o755)
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("fresh: %w", err)
	}
	logf("base root built in %s", time.Since(start).Round(time.Second))
	return dir, nil
}

func run(ctx context.Context, out io.Writer, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		s := strings.TrimSpace(buf.String())
		if len(s) > 2000 {
			s = "..." + s[len(s)-2000:]
		}
		return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, s)
	}
	return nil
}

func output(ctx context.Context, argv ...string) (string, error) {
	b, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
	return string(b), err
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	_ = os.Remove(dst) // debootstrap may leave a symlink
	return os.WriteFile(dst, b, 0o644)
}
