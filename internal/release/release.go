package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/awsx/ec2x"
	"github.com/shtetl/zmanim-ops/internal/box"
	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// Options of a release, read from the environment by ReadOptions (targets.go):
//
//	ZOPS_ENV          environment: local (the twin, default) or prod
//	ZOPS_VERSION      version to release (default: git describe --tags --always)
//	ZOPS_DRY_RUN=1    print the plan, change nothing
//	ZOPS_ALLOW_DIRTY=1 release a tree with uncommitted changes (its version gets -dirty.<time>)
//	ZOPS_LOCK_WAIT    queue behind another release for this long (e.g. 10m; default 0: fail at once)
//	ZOPS_MESSAGE      note recorded with the lock and in the history
//	ZOPS_SMOKE=0      skip the qemu smoke test (it is on by default)
//	ZOPS_API_SOURCE   build the API from this checkout or git URL (default: this repository's
//	                  reference workload); see APISource
//	ZOPS_API_REF      branch, tag or commit of a git ZOPS_API_SOURCE (default HEAD)
//	ZOPS_API_PACKAGE  Go package of the API in its source (default: config release.package)
type Options struct {
	Env        *config.Env
	Root       string // repository root (the toolkit: zops-box, .state)
	API        APISource
	Version    string
	DryRun     bool
	AllowDirty bool
	LockWait   time.Duration
	Message    string
	NoSmoke    bool
	Who        string
	Out        io.Writer

	toolkitRev string // commit of Root when the API comes from another source (Release sets it)
}

// apiPackage is the API's Go package in its source.
func (o Options) apiPackage() string {
	if o.API.Package != "" {
		return o.API.Package
	}
	return o.Env.Release.Package
}

// toolkitRev is the commit of this repository, made unique when the tree is dirty so a dirty
// zops-box is never taken from the build cache.
func toolkitRev(ctx context.Context, root string) (string, error) {
	rev, err := gitIn(ctx, root, "rev-parse", "HEAD")
	if err != nil {
		return "", fmt.Errorf("read this repository's commit (zops-box is built from it): %w", err)
	}
	if st, err := gitIn(ctx, root, "status", "--porcelain"); err != nil || st != "" {
		rev += "-dirty." + time.Now().UTC().Format("20060102T150405.000000000")
	}
	return rev, nil
}

// CheckTree refuses a dirty git tree unless allowed: a release must be reproducible from a
// commit.
type CheckTree struct {
	Src   Source
	Allow bool
	Dir   string
}

func (c *CheckTree) String() string { return "check that the git tree is clean" }

// Skip skips when ZOPS_ALLOW_DIRTY=1.
func (c *CheckTree) Skip(ctx context.Context) (bool, string) {
	if c.Allow {
		return true, "ZOPS_ALLOW_DIRTY=1"
	}
	return false, ""
}

// Run fails on uncommitted changes, listing a few.
func (c *CheckTree) Run(ctx context.Context) error {
	if !c.Src.Dirty {
		return nil
	}
	cmd := exec.CommandContext(ctx, "git", "status", "--porcelain")
	cmd.Dir = c.Dir
	out, _ := cmd.Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 8 {
		lines = append(lines[:8], fmt.Sprintf("... and %d more", len(lines)-8))
	}
	return fmt.Errorf("%w:\n    %s\ncommit or stash them, or set ZOPS_ALLOW_DIRTY=1 to release them anyway (not reproducible)", ErrDirty, strings.Join(lines, "\n    "))
}

// movePointer moves releases/current (used by rollback, where no upload happens).
type movePointer struct {
	Store   onbox.Store
	Version func() string
	Who     string
	Guard   func() *PointerGuard // conditional on what the lock holder saw; nil: unconditional
}

func (m *movePointer) String() string {
	return fmt.Sprintf("move s3://%s/%s", m.Store.Bucket(), CurrentKey)
}

func (m *movePointer) Run(ctx context.Context) error {
	var g *PointerGuard
	if m.Guard != nil {
		g = m.Guard()
	}
	return writePointer(ctx, m.Store, Pointer{Version: m.Version(), Updated: time.Now().UTC(), By: m.Who}, g)
}

// Report is what a release did.
type Report struct {
	Version  string
	Manifest *onbox.Manifest
	Outcome  onbox.Outcome
	Summary  Summary

	collect func() // copies the steps' results into the report
}

// Env wiring: the bucket and the deployer of an environment.
type wiring struct {
	store    onbox.Store
	deployer Deployer
	envFile  string // the twin's API environment (smoke /health), "" in prod
}

func wire(ctx context.Context, o Options) (*wiring, error) {
	c, err := awsx.New(ctx, o.Env)
	if err != nil {
		if o.Env.IsTwin() {
			return nil, fmt.Errorf("the local twin is not set up: %w (start it with `go tool mage twin:up`)", err)
		}
		return nil, err
	}
	w := &wiring{store: &onbox.S3Store{Client: c.S3, Name: o.Env.Buckets.Releases}}
	if o.Env.IsTwin() {
		agent := TwinAgent(o.Env, w.store, o.Out)
		w.deployer = &LocalDeployer{Agent: agent, Name: "the twin's box (" + agent.Root + ")"}
		if p := filepath.Join(agent.Root, "etc", "zmanim", "api.env"); fileExists(p) {
			w.envFile = p
		}
		return w, nil
	}
	w.deployer = &SSMDeployer{
		SSM: c.SSM, EC2: ec2x.New(c), InstanceID: o.Env.Instance.InstanceID, NameTag: "zmanim-" + o.Env.Name + "-box",
		Bucket: o.Env.Buckets.Releases, Region: o.Env.Region, Health: o.Env.Release.HealthTimeout.D(), Keep: o.Env.Release.Keep,
		Timeout: ssmTimeout(o),
		Comment: "zops release by " + o.Who, Out: o.Out,
	}
	return w, nil
}

// ssmTimeout derives the Run Command timeout from the API unit the box runs (TimeoutStartSec,
// TimeoutStopSec in deploy/systemd) and release.health_timeout.
func ssmTimeout(o Options) time.Duration {
	u, err := box.ParseUnit(filepath.Join(o.Root, "deploy", "systemd", boxspec.UnitAPI))
	if err != nil {
		u, _ = box.ParseUnit("") // systemd's defaults
	}
	return SSMTimeout(u.TimeoutStartSec, u.TimeoutStopSec, o.Env.Release.HealthTimeout.D())
}

// TwinAgent is the on-box agent of the twin: root <state>/box, the supervisor's control API
// on the twin's control port, the health gate through the twin's edge.
func TwinAgent(env *config.Env, st onbox.Store, out io.Writer) *onbox.Agent {
	return &onbox.Agent{
		Root:          filepath.Join(env.Twin.StateDir, "box"),
		Binary:        env.Release.Binary,
		Arch:          runtime.GOARCH,
		Store:         st,
		Supervisor:    &box.Client{Base: env.URL(env.Twin.Ports.Control) + "/_twin/box/", HTTP: &http.Client{Timeout: 2 * time.Minute}},
		HealthURL:     env.URL(env.Twin.Ports.Edge) + "/health",
		HealthTimeout: env.Release.HealthTimeout.D(),
		Keep:          env.Release.Keep,
		Out:           out,
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Release builds, verifies, uploads and deploys a new version (see the package comment).
func Release(ctx context.Context, o Options) (*Report, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	dir, err := o.API.Resolve(ctx, o.Root, o.Out)
	if err != nil {
		return nil, err
	}
	src, err := ReadSource(ctx, dir, o.Version)
	if err != nil {
		return nil, err
	}
	if dir != o.Root {
		// zops-box still comes from this repository: stamp it with this tree's commit.
		if o.toolkitRev, err = toolkitRev(ctx, o.Root); err != nil {
			return nil, err
		}
	}
	w, err := wire(ctx, o)
	if err != nil {
		return nil, err
	}
	p, rep := Plan(o, src, w.store, w.deployer, w.envFile)
	fmt.Fprintf(o.Out, "release %s (commit %s of %s, package %s) to %s (%s)\n", src.Version, src.short(), o.API, o.apiPackage(), o.Env.Name, w.deployer.Where())
	if !o.DryRun {
		// Housekeeping first, so that nothing but the switch runs around the switch (on the
		// twin the box shares this machine's CPU and disk): room for this build's directory.
		pruneDist(filepath.Join(o.Root, ".state", "release", "dist"), max(o.Env.Release.Keep-1, 1))
	}
	sum, err := p.Run(ctx)
	rep.Summary = sum
	rep.collect()
	if !o.DryRun {
		printReport(o.Out, rep, err)
	}
	return rep, err
}

// Plan returns the release pipeline (exported for tests and dry runs).
func Plan(o Options, src Source, st onbox.Store, d Deployer, envFile string) (*Pipeline, *Report) {
	rep := &Report{Version: src.Version}
	outDir := filepath.Join(o.Root, ".state", "release", "dist", src.Version)
	targets := []Binary{{Name: o.Env.Release.Binary, Package: o.apiPackage(), Arch: o.Env.Instance.Arch}}
	if o.Env.IsTwin() && runtime.GOARCH != o.Env.Instance.Arch {
		targets = append(targets, Binary{Name: o.Env.Release.Binary, Package: o.apiPackage(), Arch: runtime.GOARCH})
	}
	boxTarget := Binary{Name: "zops-box", Package: "./cmd/zops-box", Arch: o.Env.Instance.Arch}
	if src.Dir != "" && src.Dir != o.Root {
		boxTarget.Dir, boxTarget.Rev = o.Root, o.toolkitRev
	}
	targets = append(targets, boxTarget)
	build := &Build{Src: src, Binaries: targets, OutDir: outDir, Out: o.Out}
	smoke := &Smoke{
		Binary: func() (onbox.Artifact, bool) {
			return onbox.Find(build.Artifacts, o.Env.Release.Binary, o.Env.Instance.Arch)
		},
		Version: src.Version, EnvFile: envFile, Out: o.Out,
	}
	if o.NoSmoke {
		smoke.Emu = "off"
	}
	pkg := &Package{Src: src, Artifacts: func() []onbox.Artifact { return build.Artifacts }, OutDir: outDir, Who: o.Who, Out: o.Out}
	lock := &Lock{Store: st, Info: LockInfo{Owner: o.Who, PID: os.Getpid(), Version: src.Version, Message: o.Message},
		Timeout: o.Env.Release.LockTimeout.D(), Wait: o.LockWait, Out: o.Out}
	if f, ok := d.(Fenced); ok {
		f.SetFence(lock.Token) // the box refuses a token older than one it has seen
	}
	deploy := &Deploy{Deployer: d, Version: func() string { return src.Version }}
	rec := &Record{Store: st, Entry: Entry{Version: src.Version, Commit: src.Commit, Who: o.Who, Message: o.Message, Kind: KindRelease, Env: o.Env.Name},
		Outcome: func() onbox.Outcome { return deploy.Outcome }, Box: deploy.State, Out: o.Out}
	steps := []Step{
		&CheckTree{Src: src, Allow: o.AllowDirty, Dir: src.Dir}, // refuse unreproducible input first
		build, // linux/arm64 for the box (+ the host arch for the twin), zops-box
		smoke, // the arm64 binary runs and is the right version
		pkg,   // sha256, size, manifest
		lock,  // one release at a time, from here on
		rec,   // history entry written at the end, whatever happens
		&Upload{Store: st, Manifest: func() *onbox.Manifest { return pkg.Manifest }, Who: o.Who, Out: o.Out, Box: deploy.State, Guard: lock.Guard}, // immutable, verified, then the pointer (conditional on the lock holder's view; never moved back once the box switched)
		// Bucket retention before the switch: it never deletes the new version, the serving one
		// or the rollback target, and nothing but the switch then runs around the switch.
		&Retention{Store: st, Keep: o.Env.Release.Keep, Protect: func() []string { return []string{src.Version} }, Out: o.Out},
		&Stage{Deployer: d, Version: func() string { return src.Version }}, // on the box: download, verify, install side by side, prune old installs, before the switch
		deploy, // on the box: verify, install, swap, reload, health gate, rollback
	}
	p := &Pipeline{Name: "release " + src.Version, Steps: steps, Out: o.Out, DryRun: o.DryRun}
	// The report reads the steps' results after the run.
	rep.collect = func() { rep.Manifest = pkg.Manifest; rep.Outcome = deploy.Outcome }
	return p, rep
}

func printReport(w io.Writer, rep *Report, err error) {
	fmt.Fprintln(w)
	if err != nil {
		fmt.Fprintf(w, "release %s FAILED\n", rep.Version)
	} else {
		fmt.Fprintf(w, "release %s is serving\n", rep.Version)
	}
	if rep.Manifest != nil {
		for _, a := range rep.Manifest.Artifacts {
			fmt.Fprintf(w, "  %-10s linux/%-6s sha256 %s\n", a.Name, a.Arch, a.SHA256)
		}
	}
	fmt.Fprint(w, rep.Summary.Table())
}

// pruneDist keeps the keep most recent local build directories (.state/release/dist/<version>).
func pruneDist(dir string, keep int) {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) <= keep {
		return
	}
	type d struct {
		name string
		t    time.Time
	}
	var ds []d
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && e.IsDir() {
			ds = append(ds, d{e.Name(), fi.ModTime()})
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].t.After(ds[j].t) })
	for i := keep; i < len(ds); i++ {
		_ = os.RemoveAll(filepath.Join(dir, ds[i].name))
	}
}

// Rollback switches the box back to version, or, when version is "", to the previous
// successful release in the history. It takes the lock and records the result like a release.
func Rollback(ctx context.Context, o Options, version string) (*Report, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	w, err := wire(ctx, o)
	if err != nil {
		return nil, err
	}
	if version == "" {
		h, err := History(ctx, w.store)
		if err != nil {
			return nil, err
		}
		cur, prev := Serving(h)
		if prev == "" {
			return nil, fmt.Errorf("no rollback target: the history of s3://%s has no successful release before %s; name a version: `go tool mage release:rollback VERSION`", w.store.Bucket(), orNone(cur))
		}
		version = prev
	}
	if err := onbox.ValidVersion(version); err != nil {
		return nil, err
	}
	if _, _, err := w.store.Get(ctx, onbox.ManifestKey(version)); err != nil {
		if errors.Is(err, onbox.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s is not in s3://%s (pruned or never released); see `go tool mage release:history`", onbox.ErrNoRelease, version, w.store.Bucket())
		}
		return nil, err
	}
	deploy := &Deploy{Deployer: w.deployer, Version: func() string { return version }}
	lock := &Lock{Store: w.store, Info: LockInfo{Owner: o.Who, PID: os.Getpid(), Version: version, Message: o.Message}, Timeout: o.Env.Release.LockTimeout.D(), Wait: o.LockWait, Out: o.Out}
	if f, ok := w.deployer.(Fenced); ok {
		f.SetFence(lock.Token)
	}
	steps := []Step{
		lock,
		&Record{Store: w.store, Entry: Entry{Version: version, Who: o.Who, Message: o.Message, Kind: KindRollback, Env: o.Env.Name}, Outcome: func() onbox.Outcome { return deploy.Outcome }, Box: deploy.State, Out: o.Out},
		deploy,
		&movePointer{Store: w.store, Version: func() string { return version }, Who: o.Who, Guard: lock.Guard},
	}
	p := &Pipeline{Name: "rollback to " + version, Steps: steps, Out: o.Out, DryRun: o.DryRun}
	fmt.Fprintf(o.Out, "rollback to %s on %s (%s)\n", version, o.Env.Name, w.deployer.Where())
	sum, err := p.Run(ctx)
	rep := &Report{Version: version, Outcome: deploy.Outcome, Summary: sum}
	if !o.DryRun {
		fmt.Fprint(o.Out, sum.Table())
	}
	return rep, err
}

// ShowHistory prints the release history of the environment.
func ShowHistory(ctx context.Context, o Options) error {
	w, err := wire(ctx, o)
	if err != nil {
		return err
	}
	if err := w.store.Check(ctx); err != nil {
		return err
	}
	h, err := History(ctx, w.store)
	if err != nil {
		return err
	}
	PrintHistory(o.Out, h)
	return nil
}
