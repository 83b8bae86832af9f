// Package twin runs the local twin of production on loopback from real parts: versitygw as S3,
// kumo for SSM and SES, PostgreSQL + PostGIS and Redis from Debian packages, and the toolkit's
// own daemon (Clerk stand-in, the box supervisor running the API, the API Gateway and the
// CloudFront edge). Everything lives in a git-ignored state directory; Up is idempotent.
package twin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/box"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/deps"
	"github.com/shtetl/zmanim-ops/internal/twin/daemon"
	"github.com/shtetl/zmanim-ops/internal/twinstate"
)

// Twin is the local twin of one environment of kind twin.
type Twin struct {
	env     *config.Env
	st      twinstate.Dir
	sec     twinstate.Secrets
	aws     *awsx.Clients
	root    string
	out     io.Writer
	started []string // components this invocation started, stopped again if Up fails
	opts    Options
}

// Options of twin:up (read by ReadOptions in targets.go).
type Options struct {
	// APIEnv adds KEY=VALUE lines to the API's environment file (test hooks, e.g.
	// ZMANIM_FAIL_IF_VERSION=v9).
	APIEnv []string
	// NoBackups keeps the daemon from running the box's backup timers.
	NoBackups bool
}

// NewWith is New with twin:up's options.
func NewWith(env *config.Env, out io.Writer, o Options) (*Twin, error) {
	t, err := New(env, out)
	if err != nil {
		return nil, err
	}
	t.opts = o
	return t, nil
}

// New returns the twin of env (which must be of kind twin).
func New(env *config.Env, out io.Writer) (*Twin, error) {
	if !env.IsTwin() {
		return nil, fmt.Errorf("environment %q is %s, not a local twin; use ZOPS_ENV=local", env.Name, env.Kind)
	}
	if out == nil {
		out = io.Discard
	}
	t := &Twin{env: env, st: twinstate.Dir(env.Twin.StateDir), root: config.RepoRoot(), out: out}
	if sec, err := t.st.ReadSecrets(); err == nil {
		t.sec = sec
		t.aws, _ = t.awsClients(context.Background())
	}
	return t, nil
}

// State returns the state directory.
func (t *Twin) State() twinstate.Dir { return t.st }

// Secrets returns the twin's generated secrets (never print them).
func (t *Twin) Secrets() twinstate.Secrets { return t.sec }

func (t *Twin) step(name string, f func() error) error {
	start := time.Now()
	fmt.Fprintf(t.out, "  %-10s ", name)
	if err := f(); err != nil {
		fmt.Fprintln(t.out, "FAILED")
		return fmt.Errorf("twin %s: %w", name, err)
	}
	fmt.Fprintf(t.out, "ok (%s)\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// Up brings every component up; components already running are left alone. If a step fails,
// what this call started is stopped again so nothing is left half-started.
func (t *Twin) Up(ctx context.Context) (err error) {
	start := time.Now()
	unlock, err := t.lock(t.out)
	if err != nil {
		return err
	}
	defer unlock()
	fmt.Fprintf(t.out, "twin: bringing up the local twin in %s\n", t.st)
	defer func() {
		if err != nil && len(t.started) > 0 {
			fmt.Fprintf(t.out, "twin: stopping what this run started: %s\n", strings.Join(t.started, ", "))
			t.stopComponents(context.Background(), t.started)
		}
	}()
	if err := t.step("packages", func() error { return deps.Host(t.out).Ensure(ctx, "twin:up") }); err != nil {
		return err
	}
	if t.sec, err = t.st.EnsureSecrets(); err != nil {
		return err
	}
	if t.aws, err = t.awsClients(ctx); err != nil {
		return err
	}
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"s3", t.startS3},
		{"aws", t.startKumo},
		{"postgres", t.startPostgres},
		{"redis", t.startRedis},
		{"api", t.installAPI},
		{"daemon", t.startDaemon},
	}
	// Builds and downloads start now, side by side; a failed step cancels what is left.
	warmCtx, cancelWarm := context.WithCancel(ctx)
	waitWarm := t.warm(warmCtx)
	defer func() {
		if err != nil {
			cancelWarm()
			waitWarm()
		}
	}()
	for _, s := range steps {
		if err := t.step(s.name, func() error { return s.f(ctx) }); err != nil {
			return err
		}
	}
	fmt.Fprintf(t.out, "twin: up in %s; edge at %s\n", time.Since(start).Round(time.Millisecond), t.env.URL(t.env.Twin.Ports.Edge))
	return nil
}

// installAPI builds the reference API for the host, seeds the database on first start, writes
// the API's environment file and installs an initial release if the box has none.
func (t *Twin) installAPI(ctx context.Context) error {
	env := fmt.Sprintf(`# written by twin:up; the twin's /etc/zmanim/api.env
ZMANIM_DATABASE_URL=%s
ZMANIM_REDIS_ADDR=%s
ZMANIM_JWKS_URL=%s
ZMANIM_JWT_ISSUER=%s
ZMANIM_JWT_AUDIENCE=%s
ZMANIM_ORIGIN_VERIFY_HEADER=%s
ZMANIM_ORIGIN_VERIFY_SECRET=%s
`, t.AppPGSocketURL(), t.addr(t.env.Twin.Ports.Redis), t.env.API.Authorizers[config.AuthorizerJWT].JWKS(),
		t.env.API.Authorizers[config.AuthorizerJWT].Issuer, t.env.API.Authorizers[config.AuthorizerJWT].Audience[0],
		t.env.API.OriginVerifyHeader, t.sec.OriginVerify)
	for _, kv := range t.opts.APIEnv { // test hooks, e.g. ZMANIM_FAIL_IF_VERSION=v9
		env += kv + "\n"
	}
	envFile := daemon.BoxEnvFile(t.st)
	if err := os.MkdirAll(filepath.Dir(envFile), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(envFile, []byte(env), 0o600); err != nil {
		return err
	}
	if _, err := os.Stat(daemon.BoxBinary(t.st)); err == nil {
		return t.seed(ctx, daemon.BoxBinary(t.st))
	}
	const initial = initialRelease
	bin := t.initialAPI()
	if err := goBuild(ctx, t.root, bin, "./examples/zmanim-api", "-X main.version="+initial, apiBuildFlags...); err != nil {
		return err
	}
	if err := t.seed(ctx, bin); err != nil {
		return err
	}
	tmp := daemon.BoxCurrent(t.st) + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Join("releases", initial), tmp); err != nil {
		return err
	}
	return os.Rename(tmp, daemon.BoxCurrent(t.st))
}

func (t *Twin) seed(ctx context.Context, bin string) error {
	src := t.env.Twin.Cities
	if src == "geonames" {
		p, err := GeoNames(ctx, t.out)
		if err != nil {
			return err
		}
		src = "geonames:" + p
	}
	cmd := exec.CommandContext(ctx, bin, "seed", src)
	cmd.Env = append(os.Environ(), "ZMANIM_DATABASE_URL="+t.AppPGURL())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("seed the database: %w\n%s", err, out)
	}
	return nil
}

// goBuild builds pkg into out, once per process (the warm-up may have built it already).
func goBuild(ctx context.Context, root, out, pkg, ldflags string, flags ...string) error {
	return once(strings.Join(append([]string{root, out, pkg, ldflags}, flags...), "\x00"), func() error {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		// No -trimpath by default: these are local binaries, and sharing the build cache with
		// `go test` and mage keeps the first twin:up from compiling every dependency twice.
		args := append(append([]string{"build"}, flags...), "-ldflags", ldflags, "-o", out, pkg)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		return nil
	})
}

func fileSum(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// startDaemon builds the twin daemon and (re)starts it when it is not running or its binary
// changed (the toolkit's code was updated).
func (t *Twin) startDaemon(ctx context.Context) error {
	p := proc{"zops-twind", t.st}
	bin := t.st.Path("bin", "zops-twind")
	if err := goBuild(ctx, t.root, bin, "./cmd/zops-twind", ""); err != nil {
		return err
	}
	// The daemon runs the box's backup timers with the same program the units run.
	if err := goBuild(ctx, t.root, t.st.Path("bin", "zops-backup"), "./cmd/zops-backup", ""); err != nil {
		return err
	}
	sum := fileSum(bin)
	sumFile := t.st.Path("run", "zops-twind.sum")
	if _, ok := p.pid(); ok {
		if old, _ := os.ReadFile(sumFile); string(old) == sum {
			return t.waitDaemon(ctx, p)
		}
		fmt.Fprint(t.out, "(toolkit changed: restarting daemon) ")
		if err := p.stop(40 * time.Second); err != nil {
			return err
		}
	}
	p2 := t.env.Twin.Ports
	for _, c := range []struct {
		f string
		p int
	}{{"jwt", p2.JWT}, {"box", p2.Box}, {"gateway", p2.Gateway}, {"edge", p2.Edge}, {"control", p2.Control}} {
		if err := portFree(t.env.Twin.Host, c.p, c.f); err != nil {
			return err
		}
	}
	args := []string{"--root", t.root, "--env", t.env.Name}
	if t.env.File != "" {
		args = append(args, "--config", t.env.File)
	}
	if t.opts.NoBackups {
		args = append(args, "--backups=false")
	}
	if err := p.start(exec.Command(bin, args...)); err != nil {
		return err
	}
	t.started = append(t.started, "zops-twind")
	if err := os.WriteFile(sumFile, []byte(sum), 0o644); err != nil {
		return err
	}
	return t.waitDaemon(ctx, p)
}

// waitDaemon waits for the control port and for the API to be running behind the edge.
func (t *Twin) waitDaemon(ctx context.Context, p proc) error {
	bc := t.BoxClient()
	return waitFor(ctx, p, 60*time.Second, func(ctx context.Context) error {
		st, err := bc.Status(ctx)
		if err != nil {
			return err
		}
		if st.State != box.StateRunning {
			logs, _ := bc.Logs(ctx, 15)
			if st.State == box.StateFailed {
				return stopRetrying(fmt.Errorf("the API is %s: %s\n%s", st.State, st.LastError, logs))
			}
			return fmt.Errorf("the API is %s", st.State)
		}
		resp, err := http.Get(t.env.URL(t.env.Twin.Ports.Edge) + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /health through the edge: %s", resp.Status)
		}
		return nil
	})
}

// permanent marks an error waitFor must not retry: the component failed for good (the box
// supervisor gave up on the API), so waiting out the timeout would only hide it.
type permanent struct{ error }

// stopRetrying makes waitFor return err at once instead of polling again.
func stopRetrying(err error) error { return permanent{err} }

// BoxClient talks to the box supervisor in the daemon.
func (t *Twin) BoxClient() *box.Client {
	return &box.Client{Base: t.env.URL(t.env.Twin.Ports.Control) + "/_twin/box/"}
}

// Down stops every component; data stays in the state directory.
func (t *Twin) Down(ctx context.Context) error {
	unlock, err := t.lock(t.out)
	if err != nil {
		return err
	}
	defer unlock()
	fmt.Fprintln(t.out, "twin: stopping")
	t.stopComponents(ctx, []string{"zops-twind", "redis", "postgres", "kumo", "versitygw"})
	return nil
}

func (t *Twin) stopComponents(ctx context.Context, names []string) {
	// Reverse start order: the daemon (API) first, S3 last.
	order := []string{"zops-twind", "redis", "postgres", "kumo", "versitygw"}
	for _, n := range order {
		want := false
		for _, x := range names {
			want = want || x == n
		}
		if !want {
			continue
		}
		var err error
		if n == "postgres" {
			err = t.stopPostgres(ctx)
		} else {
			err = proc{n, t.st}.stop(40 * time.Second)
		}
		if err != nil {
			fmt.Fprintf(t.out, "  %-10s stop failed: %v\n", n, err)
		} else {
			fmt.Fprintf(t.out, "  %-10s stopped\n", n)
		}
	}
}

// Reset stops the twin and deletes its state directory (all data, generated secrets, logs).
func (t *Twin) Reset(ctx context.Context) error {
	if err := t.Down(ctx); err != nil {
		return err
	}
	unlock, err := t.lock(t.out)
	if err != nil {
		return err
	}
	defer unlock()
	dir := string(t.st)
	if dir == "" || dir == "/" || !strings.Contains(dir, ".state") && !t.env.StateDirSet {
		return fmt.Errorf("refusing to delete %q: not a twin state directory", dir)
	}
	if pg := t.pgDir(); pg != t.st.Path("pg") && strings.HasPrefix(pg, relocatedPGRoot+"/") {
		fmt.Fprintf(t.out, "twin: deleting %s\n", filepath.Dir(pg))
		if err := os.RemoveAll(filepath.Dir(pg)); err != nil {
			return err
		}
	}
	fmt.Fprintf(t.out, "twin: deleting %s\n", dir)
	return os.RemoveAll(dir)
}

// Status checks every component.
func (t *Twin) Status(ctx context.Context) []Health {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p := t.env.Twin.Ports
	verify := map[string]string{t.env.API.OriginVerifyHeader: t.sec.OriginVerify}
	hs := []Health{t.healthS3(ctx), t.healthKumo(ctx), t.healthPostgres(ctx), t.healthRedis(ctx)}
	jwt := t.httpHealth(ctx, "jwt", p.JWT, "/.well-known/jwks.json", nil, 200)
	jwt.Version = "zops-twind (Clerk stand-in, RS256)"
	api := t.httpHealth(ctx, "api", p.Box, "/health", verify, 200)
	if st, err := t.BoxClient().Status(ctx); err == nil && st.Active != nil {
		api.Version = "zmanim-api " + st.Active.Version
		api.Detail += fmt.Sprintf("; box %s, pid %d, restarts %d", st.State, st.Active.PID, st.Restarts)
	} else if err == nil {
		api.Detail += "; box " + st.State + " " + st.LastError
	}
	// The gateway passes the origin-verify header through (CloudFront adds it): probe as the edge does.
	gw := t.httpHealth(ctx, "gateway", p.Gateway, "/health", verify, 200)
	gw.Version = "zops-twind (API Gateway HTTP API emulation)"
	ed := t.httpHealth(ctx, "edge", p.Edge, "/health", nil, 200)
	ed.Version = "zops-twind (CloudFront emulation, 2 tiers)"
	return append(hs, jwt, api, gw, ed)
}

// Healthy reports whether every component is healthy.
func Healthy(hs []Health) bool {
	for _, h := range hs {
		if !h.Healthy {
			return false
		}
	}
	return len(hs) > 0
}

// PrintStatus writes the status as a table or as JSON.
func PrintStatus(w io.Writer, hs []Health, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"healthy": Healthy(hs), "components": hs})
	}
	for _, h := range hs {
		mark := "ok  "
		if !h.Healthy {
			mark = "DOWN"
		}
		fmt.Fprintf(w, "%s %-9s %-34s %-38s %s\n", mark, h.Name, h.URL, h.Version, h.Detail)
	}
	return nil
}

// ErrUnhealthy is returned by callers that need every component healthy.
var ErrUnhealthy = errors.New("the local twin is not healthy")
