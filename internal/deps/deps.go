// Package deps is the one list of the Debian packages each target needs, and Ensure, which every
// target calls before any long work: it checks first (a stat per program), then, as root on
// Debian, runs `apt-get update` once and `apt-get install -y` for what is missing; otherwise it
// stops with the exact one-line apt-get command (or, off Debian, the programs to install).
//
// A fresh machine's first `go tool mage release` used to build for ten minutes and then fail on
// a program nobody had installed (issue 15); checking every need up front turns that into a
// one-second failure with the fix, or into an install.
package deps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// ErrMissing reports programs that are missing and could not be installed here.
var ErrMissing = errors.New("missing programs")

// Need is one Debian package and how to tell that it is installed.
type Need struct {
	Package  string   // Debian package
	Programs []string // programs looked up in PATH (all must be found)
	Files    []string // glob patterns; each must match at least one file (versioned paths)
	Provides []string // further programs it installs that the code runs (not checked one by one)
	Why      string   // what uses it, shown when it is missing
}

// Needs are the packages by name, each with its proof.
var Needs = map[string]Need{
	"postgresql-15": {Package: "postgresql-15", Files: []string{"/usr/lib/postgresql/*/bin/pg_ctl", "/usr/lib/postgresql/*/bin/pg_dump"},
		Provides: []string{"pg_ctl", "initdb", "postgres", "pg_dump", "pg_restore", "psql", "pg_basebackup", "pg_archivecleanup"},
		Why:      "the twin's PostgreSQL server and the pg_dump/pg_restore/psql clients (another major version also does)"},
	"postgresql-15-postgis-3": {Package: "postgresql-15-postgis-3", Files: []string{"/usr/share/postgresql/*/extension/postgis.control"},
		Why: "PostGIS for the cities search"},
	"redis-server":     {Package: "redis-server", Programs: []string{"redis-server"}, Why: "the twin's Redis, migrate:smoke's scratch Redis"},
	"redis-tools":      {Package: "redis-tools", Programs: []string{"redis-cli"}, Why: "backup:run saves Redis' RDB with redis-cli --rdb"},
	"npm":              {Package: "npm", Programs: []string{"npm", "node"}, Why: "the pinned CDK CLI (infra) and the edge function test"},
	"git":              {Package: "git", Programs: []string{"git"}, Why: "the release version (git describe) and the clean-tree check"},
	"qemu-user-static": {Package: "qemu-user-static", Programs: []string{"qemu-aarch64-static"}, Why: "the release's smoke test of the linux/arm64 binary"},
	"systemd":          {Package: "systemd", Programs: []string{"systemd-analyze", "journalctl", "systemctl"}, Why: "systemd-analyze verify of the box's units; systemctl for zops-backup recover on the box"},
	"shellcheck":       {Package: "shellcheck", Programs: []string{"shellcheck"}, Why: "the boot script test"},
	"chromium":         {Package: "chromium", Programs: []string{"chromium"}, Why: "the browser-across-deploy test"},
	"awscli":           {Package: "awscli", Programs: []string{"aws"}, Why: "the aws s3 sync baseline of bench:site"},
	"debootstrap":      {Package: "debootstrap", Programs: []string{"debootstrap"}, Why: "building a Debian root (bench:fresh, the box's image recipe)"},
	"iptables":         {Package: "iptables", Programs: []string{"iptables"}, Why: "NAT from bench:fresh's network namespace to the package registries"},
	"procps":           {Package: "procps", Programs: []string{"pgrep"}, Why: "the packer test's check that no process is left"},
	"curl":             {Package: "curl", Programs: []string{"curl"}, Why: "the zops-ec2 builder's tests run its Run Command scripts here, which move files through S3 with curl as the instance does"},
	"iproute2":         {Package: "iproute2", Programs: []string{"ip"}, Why: "bench:fresh's and the box proof's veth pairs"},
	"mount":            {Package: "mount", Programs: []string{"losetup"}, Why: "the box proof's data volume (a sparse file on a loop device)"},
	"debian-archive-keyring": {Package: "debian-archive-keyring", Files: []string{"/usr/share/keyrings/debian-archive-keyring.gpg"},
		Why: "debootstrap of Debian bookworm checks the archive's signature (not preinstalled on Ubuntu CI runners)"},
}

// Targets maps a target (as typed after `go tool mage`) to the packages it needs, its own and
// those of what it runs (twin:up for everything on the twin). Add a row when a target starts
// running a new program; TestEveryExecIsCovered finds the ones forgotten.
var Targets = map[string][]string{
	"twin:up":       twin,
	"release":       with(twin, "git", "qemu-user-static"),
	"test":          with(twin, "npm", "git", "qemu-user-static", "systemd", "shellcheck", "chromium", "debootstrap", "debian-archive-keyring", "procps", "mount", "iproute2", "curl"),
	"backup":        with(twin, "systemd"), // backup:* (run, verify, drill, wal, base, restore, units)
	"migrate":       {"postgresql-15", "redis-server", "git"},
	"site":          twin,
	"infra":         {"npm"},
	"loadtest":      twin,
	"bench:site":    with(twin, "awscli"),
	"bench:fresh":   {"debootstrap", "iptables", "iproute2", "git"},
	"bench:backup":  twin,
	"bench:verify":  twin,
	"bench:release": with(twin, "git", "qemu-user-static"),
	"bench:loadgen": twin,
	"ami:local":     {"debootstrap", "debian-archive-keyring", "systemd", "qemu-user-static", "iproute2", "mount", "git"},
	"bench:box":     {"debootstrap", "debian-archive-keyring", "systemd", "qemu-user-static", "iproute2", "mount", "git"},
	// bench:recovery builds and boots the box like bench:box (its losetup is in mount).
	"bench:recovery": {"debootstrap", "systemd", "qemu-user-static", "iproute2", "mount", "git"},
	"ami:ec2":        {"git"},
}

var twin = []string{"postgresql-15", "postgresql-15-postgis-3", "redis-server", "redis-tools"}

func with(base []string, more ...string) []string {
	return append(append([]string(nil), base...), more...)
}

// System is what Ensure looks at and runs; tests replace parts of it (a non-root uid, no
// /etc/debian_version, a fake apt-get).
type System struct {
	Root   bool                                                           // running as uid 0
	Debian bool                                                           // /etc/debian_version exists
	Look   func(prog string) bool                                         // program in PATH
	Glob   func(pattern string) bool                                      // pattern matches a file
	Run    func(ctx context.Context, out io.Writer, argv ...string) error // runs apt-get
	Out    io.Writer
}

// Host is the machine this process runs on.
func Host(out io.Writer) System {
	_, err := os.Stat("/etc/debian_version")
	return System{
		Root:   os.Geteuid() == 0,
		Debian: err == nil,
		Look:   func(p string) bool { _, err := exec.LookPath(p); return err == nil },
		Glob:   func(p string) bool { m, _ := filepath.Glob(p); return len(m) > 0 },
		Run:    run,
		Out:    out,
	}
}

// Ensure makes sure the programs of target are installed, on this machine, before the target
// does any long work. See System.Ensure.
func Ensure(ctx context.Context, target string) error {
	return Host(os.Stdout).Ensure(ctx, target)
}

// updated makes `apt-get update` run once per process even when several targets ensure.
var (
	updateMu sync.Mutex
	updated  bool
)

// Ensure checks the packages of target and installs the missing ones as root on Debian;
// otherwise it returns ErrMissing with the one command that installs them.
func (s System) Ensure(ctx context.Context, target string) error {
	names, ok := Targets[target]
	if !ok {
		return fmt.Errorf("deps: no package list for target %q (add it to deps.Targets)", target)
	}
	missing := s.Missing(names)
	if len(missing) == 0 {
		return nil
	}
	pkgs := packages(missing)
	line := "apt-get update && apt-get install -y " + strings.Join(pkgs, " ")
	switch {
	case !s.Debian:
		return fmt.Errorf("%w for %s: this is not Debian (no /etc/debian_version), so nothing was installed; install these with your package manager and rerun:\n%s",
			ErrMissing, target, describe(missing))
	case !s.Root:
		return fmt.Errorf("%w for %s: %s; nothing was built. Install them as root and rerun:\n  sudo sh -c '%s'",
			ErrMissing, target, progs(missing), line)
	}
	if s.Out != nil {
		fmt.Fprintf(s.Out, "%s: installing %s (apt-get)\n", target, strings.Join(pkgs, " "))
	}
	updateMu.Lock()
	defer updateMu.Unlock()
	if !updated {
		if err := s.Run(ctx, s.Out, "apt-get", "update", "-qq"); err != nil {
			return fmt.Errorf("%w for %s: `apt-get update` failed: %v; check the network to the Debian mirror and rerun", ErrMissing, target, err)
		}
		updated = true
	}
	// Recommends stay on (apt's default): chromium without them lacks the fonts the browser
	// test renders, and CI tested the packages this way.
	if err := s.Run(ctx, s.Out, append([]string{"apt-get", "install", "-y", "-qq"}, pkgs...)...); err != nil {
		return fmt.Errorf("%w for %s: `%s` failed: %v; check the network to the Debian mirror and rerun", ErrMissing, target, line, err)
	}
	if still := s.Missing(names); len(still) > 0 {
		return fmt.Errorf("%w for %s: still missing after apt-get install: %s", ErrMissing, target, progs(still))
	}
	return nil
}

// Missing returns the needs among names that are not installed.
func (s System) Missing(names []string) []Need {
	var out []Need
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		need, ok := Needs[n]
		if !ok {
			panic("deps: unknown package " + n + " in deps.Targets")
		}
		if !s.has(need) {
			out = append(out, need)
		}
	}
	return out
}

func (s System) has(n Need) bool {
	for _, p := range n.Programs {
		if !s.Look(p) {
			return false
		}
	}
	for _, g := range n.Files {
		if !s.Glob(g) {
			return false
		}
	}
	return true
}

func packages(ns []Need) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Package)
	}
	sort.Strings(out)
	return out
}

func progs(ns []Need) string {
	var out []string
	for _, n := range ns {
		out = append(out, what(n)+" ("+n.Package+")")
	}
	return strings.Join(out, ", ")
}

func what(n Need) string {
	w := append([]string(nil), n.Programs...)
	for _, f := range n.Files {
		w = append(w, f)
	}
	return strings.Join(w, " ")
}

func describe(ns []Need) string {
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, "  %s: %s (Debian package %s)\n", what(n), n.Why, n.Package)
	}
	return strings.TrimRight(b.String(), "\n")
}

func run(ctx context.Context, out io.Writer, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	b, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 10 {
			lines = lines[len(lines)-10:]
		}
		return fmt.Errorf("%w\n%s", err, strings.Join(lines, "\n"))
	}
	return nil
}
