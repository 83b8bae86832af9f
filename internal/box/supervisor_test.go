package box

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/boxspec"
)

// fakeAPI is the test binary (testdata/fakeapi), built once in TestMain. It reports the
// name of its directory as its version, so copies of it are releases.
var fakeAPI string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "box-test-")
	if err != nil {
		panic(err)
	}
	fakeAPI = filepath.Join(dir, "fakeapi")
	cmd := exec.Command("go", "build", "-o", fakeAPI, "./testdata/fakeapi")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fakeapi: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testBox is a root with releases/<v>/zmanim-api and a current symlink.
type testBox struct {
	t    *testing.T
	root string
	env  string
	ln   net.Listener
	url  string
	sup  *Supervisor
}

func newTestBox(t *testing.T, unit Unit, env string, versions ...string) *testBox {
	t.Helper()
	root := t.TempDir()
	b := &testBox{t: t, root: root, env: filepath.Join(root, "api.env")}
	for _, v := range versions {
		b.install(v)
	}
	b.point(versions[0])
	if err := os.WriteFile(b.env, []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.ln, b.url = ln, "http://"+ln.Addr().String()
	if unit.TimeoutStartSec == 0 {
		unit.TimeoutStartSec = 10 * time.Second
	}
	if unit.TimeoutStopSec == 0 {
		unit.TimeoutStopSec = 10 * time.Second
	}
	sup, err := New(Options{Listener: ln, Binary: filepath.Join(root, "current", "zmanim-api"), EnvFile: b.env, Unit: unit, RunDir: filepath.Join(root, "run")})
	if err != nil {
		t.Fatal(err)
	}
	b.sup = sup
	t.Cleanup(func() {
		t0 := time.Now()
		sup.Stop()
		ln.Close()
		if d := time.Since(t0); d > 2*time.Second {
			t.Logf("stop took %s; journal:\n%s", d, strings.Join(sup.Logs(400), "\n"))
		}
	})
	return b
}

func (b *testBox) install(v string) {
	dir := filepath.Join(b.root, "releases", v)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	// A hard link, not a copy: a copy is a file open for writing, and a parallel test's fork
	// inherits that descriptor until its exec, so exec'ing the copy failed now and then with
	// "text file busy" (ETXTBSY) under `go test ./...`.
	dst := filepath.Join(dir, "zmanim-api")
	if err := os.Link(fakeAPI, dst); err == nil {
		return
	}
	data, err := os.ReadFile(fakeAPI)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		b.t.Fatal(err)
	}
}

// point swaps the current symlink atomically, as a release does.
func (b *testBox) point(v string) {
	tmp := filepath.Join(b.root, "current.tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Join("releases", v), tmp); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(b.root, "current")); err != nil {
		b.t.Fatal(err)
	}
}

func (b *testBox) health() (string, error) {
	resp, err := oneShot.Get(b.url + "/health")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var h struct{ Version string }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return h.Version, fmt.Errorf("status %d", resp.StatusCode)
	}
	return h.Version, nil
}

var oneShot = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func (b *testBox) writeEnv(env string) {
	if err := os.WriteFile(b.env, []byte(env), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// load sends requests from several workers until stop is closed, counting failures: both
// quick requests (new and reused connections) and slow ones that are in flight when the old
// process is asked to stop.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	versions   map[string]int
}

func runLoad(ctx context.Context, url string, workers int) (*load, func()) {
	l := &load{versions: map[string]int{}}
	var wg sync.WaitGroup
	keepAlive := &http.Client{Timeout: 10 * time.Second}
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := keepAlive
			if i%2 == 1 {
				c = fresh
			}
			path := "/health"
			if i%4 == 3 {
				path = "/slow?ms=150"
			}
			for ctx.Err() == nil {
				resp, err := c.Get(url + path)
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					} else if path == "/health" {
						var h struct{ Version string }
						if json.Unmarshal(body, &h) == nil {
							l.mu.Lock()
							l.versions[h.Version]++
							l.mu.Unlock()
						}
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 5 {
						l.errs = append(l.errs, fmt.Sprintf("worker %d (keepalive=%v): %v", i, c == keepAlive, err))
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}(i)
	}
	return l, func() {
		wg.Wait()
		// Pre-dialled spare connections that never carried a request would otherwise hold
		// the old process's Shutdown for 5 s (net/http treats them as new, not idle).
		keepAlive.CloseIdleConnections()
	}
}

func TestReloadHandsOverWithoutRefusedConnections(t *testing.T) {
	b := newTestBox(t, Unit{Restart: "on-failure", RestartSec: 100 * time.Millisecond}, "", "v1", "v2", "v3")
	if err := b.sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, wait := runLoad(ctx, b.url, 16)
	time.Sleep(300 * time.Millisecond)
	for _, v := range []string{"v2", "v3", "v1", "v2"} {
		b.point(v)
		p, err := b.sup.Reload(context.Background())
		if err != nil {
			t.Fatalf("reload to %s: %v", v, err)
		}
		if p.Version != v {
			t.Fatalf("reload: active version %s, want %s", p.Version, v)
		}
		time.Sleep(300 * time.Millisecond)
		if got, err := b.health(); err != nil || got != v {
			t.Fatalf("after reload to %s: health %q %v", v, got, err)
		}
	}
	cancel()
	wait()
	if l.failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during 4 handovers: %v", l.failed.Load(), l.ok.Load()+l.failed.Load(), l.errs)
	}
	if l.ok.Load() < 100 || len(l.versions) < 3 {
		t.Fatalf("load too small to mean anything: %d ok, versions %v", l.ok.Load(), l.versions)
	}
	t.Logf("%d requests, 0 failed, versions seen %v", l.ok.Load(), l.versions)
	// Each old process reported STOPPING=1 when it drained: its notify socket was still there.
	var stopping int
	for _, line := range b.sup.Logs(1000) {
		if strings.Contains(line, "sd_notify") {
			t.Errorf("a draining process could not notify: %s", line)
		}
		if strings.Contains(line, `"msg":"draining"`) {
			stopping++
		}
	}
	if stopping < 4 {
		t.Errorf("%d processes drained, want 4", stopping)
	}
}

func TestFailedStartKeepsOldProcess(t *testing.T) {
	tests := []struct {
		name, env, want string
		unit            Unit
	}{
		{"exits at start", "ZMANIM_FAIL_IF_VERSION=v2\n", "refusing to start", Unit{}},
		{"never ready", "FAKE_NEVER_READY=1\n", "not ready after", Unit{TimeoutStartSec: 700 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newTestBox(t, tc.unit, "", "v1", "v2")
			if err := b.sup.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			old := b.sup.Status().Active.PID
			b.writeEnv(tc.env) // read at the next start only, like EnvironmentFile=
			b.point("v2")
			ctx, cancel := context.WithCancel(context.Background())
			l, wait := runLoad(ctx, b.url, 4)
			_, err := b.sup.Reload(context.Background())
			cancel()
			wait()
			var se *StartError
			if !errors.As(err, &se) {
				t.Fatalf("reload error %v (%T), want *StartError", err, err)
			}
			if se.Version != "v2" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want version v2 and %q", err, tc.want)
			}
			if tc.name == "exits at start" && !strings.Contains(se.Logs, "refusing to start") {
				t.Fatalf("StartError.Logs lacks the process output: %q", se.Logs)
			}
			st := b.sup.Status()
			if st.Active == nil || st.Active.PID != old || st.Active.Version != "v1" || st.State != StateRunning {
				t.Fatalf("status after failed reload = %+v, want v1 pid %d running", st, old)
			}
			if v, err := b.health(); err != nil || v != "v1" {
				t.Fatalf("health after failed reload: %q %v", v, err)
			}
			if l.failed.Load() != 0 {
				t.Fatalf("%d requests failed while the new process failed: %v", l.failed.Load(), l.errs)
			}
			// The old process must still stop cleanly (regression: a failed start used to
			// leave the shared socket blocking, so it hung in accept4 until SIGKILL).
			t0 := time.Now()
			b.sup.Stop()
			if d := time.Since(t0); d > 3*time.Second {
				t.Fatalf("stopping the old process after a failed start took %s", d)
			}
		})
	}
}

func TestRestartOnFailure(t *testing.T) {
	b := newTestBox(t, Unit{Restart: "on-failure", RestartSec: 50 * time.Millisecond}, "FAKE_EXIT_AFTER=300ms\n", "v1")
	if err := b.sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := b.sup.Status().Active.PID
	b.writeEnv("") // the restarted process does not crash
	waitFor(t, "a restart", 5*time.Second, func() bool {
		st := b.sup.Status()
		return st.Restarts == 1 && st.State == StateRunning && st.Active != nil && st.Active.PID != first
	})
	if v, err := b.health(); err != nil || v != "v1" {
		t.Fatalf("health after restart: %q %v", v, err)
	}
	if logs := strings.Join(b.sup.Logs(50), "\n"); !strings.Contains(logs, "FAKE_EXIT_AFTER") {
		t.Fatalf("journal lacks the crash: %s", logs)
	}
}

func TestRestartPolicyNoLeavesItFailed(t *testing.T) {
	b := newTestBox(t, Unit{Restart: "no"}, "FAKE_EXIT_AFTER=100ms\n", "v1")
	if err := b.sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "state failed", 5*time.Second, func() bool { return b.sup.Status().State == StateFailed })
	if r := b.sup.Status().Restarts; r != 0 {
		t.Fatalf("Restart=no restarted %d times", r)
	}
}

func TestStartLimit(t *testing.T) {
	b := newTestBox(t, Unit{Restart: "on-failure", RestartSec: 10 * time.Millisecond}, "FAKE_EXIT_AFTER=20ms\n", "v1")
	if err := b.sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the start limit", 10*time.Second, func() bool { return b.sup.Status().State == StateFailed })
	st := b.sup.Status()
	if !strings.Contains(st.LastError, ErrStartLimit.Error()) {
		t.Fatalf("last error %q, want %q", st.LastError, ErrStartLimit)
	}
	if st.Restarts != 5 {
		t.Fatalf("restarts = %d, want 5 (StartLimitBurst) before giving up", st.Restarts)
	}
	// zops-box exits on this, so that systemd marks the unit failed.
	select {
	case err := <-b.sup.Failed():
		if !errors.Is(err, ErrStartLimit) {
			t.Fatalf("Failed() = %v, want %v", err, ErrStartLimit)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Failed() never delivered after the start limit")
	}
	// A reload (a release) still works on a failed unit once the binary is fixed.
	b.writeEnv("")
	if _, err := b.sup.Reload(context.Background()); err != nil {
		t.Fatalf("reload of a failed unit: %v", err)
	}
	if v, err := b.health(); err != nil || v != "v1" {
		t.Fatalf("health after reload: %q %v", v, err)
	}
}

func TestDependencyMissingRefusesStart(t *testing.T) {
	root := t.TempDir()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	sup, err := New(Options{Listener: ln, Binary: filepath.Join(root, "nothing"), RunDir: root, Unit: Unit{TimeoutStartSec: time.Second},
		Deps: []Dep{{Name: "postgresql", Check: func(context.Context) error { return errors.New("connection refused") }}}})
	if err != nil {
		t.Fatal(err)
	}
	err = sup.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "postgresql is not available") {
		t.Fatalf("start without its dependency: %v", err)
	}
}

func TestControlAPI(t *testing.T) {
	b := newTestBox(t, Unit{}, "", "v1", "v2")
	if err := b.sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b.sup.Handler("/_twin/box/"))
	defer srv.Close()
	c := &Client{Base: srv.URL + "/_twin/box/"}
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil || st.Active == nil || st.Active.Version != "v1" {
		t.Fatalf("status: %+v %v", st, err)
	}
	b.point("v2")
	p, err := c.Reload(ctx)
	if err != nil || p.Version != "v2" {
		t.Fatalf("reload: %+v %v", p, err)
	}
	b.writeEnv("ZMANIM_FAIL_IF_VERSION=v1\n")
	b.point("v1")
	_, err = c.Reload(ctx)
	if !errors.Is(err, ErrReload) || !strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("failed reload through the API: %v, want ErrReload with the log lines", err)
	}
	logs, err := c.Logs(ctx, 200)
	if err != nil || !strings.Contains(logs, "zmanim-api[") || !strings.Contains(logs, "serving") {
		t.Fatalf("logs: %v\n%s", err, logs)
	}
}

func TestParseProductionUnit(t *testing.T) {
	u, err := ParseUnit("../../deploy/systemd/zmanim-api.service")
	if err != nil {
		t.Fatal(err)
	}
	if u.Type != "notify" || u.Restart != "on-failure" || u.RestartSec != time.Second || u.TimeoutStartSec != time.Minute || u.TimeoutStopSec != 30*time.Second {
		t.Fatalf("service unit parsed as %+v", u)
	}
	for _, dep := range []string{boxspec.UnitPostgres, boxspec.UnitRedis, boxspec.UnitFirstBoot} {
		if !strings.Contains(strings.Join(u.Requires, " "), dep) || !strings.Contains(strings.Join(u.After, " "), dep) {
			t.Errorf("unit lacks Requires=/After= %s: %+v", dep, u)
		}
	}
	s, err := ParseUnit("../../deploy/systemd/zmanim-api.socket")
	if err != nil || s.ListenStream != "8080" || s.Backlog != 4096 {
		t.Fatalf("socket unit: %+v %v", s, err)
	}
	tests := []struct {
		in   string
		want time.Duration
	}{{"5", 5 * time.Second}, {"500ms", 500 * time.Millisecond}, {"2min", 2 * time.Minute}, {"1.5", 1500 * time.Millisecond}}
	for _, tc := range tests {
		if got, err := parseSec(tc.in); err != nil || got != tc.want {
			t.Errorf("parseSec(%q) = %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestNewProcessStartsBelowTheServingOne: during a reload the new process runs at StartNice
// until it reports READY=1, then at the supervisor's own priority (where the supervisor may
// give that back: root, or LimitNICE= in the unit); the serving process is never lowered.
func TestNewProcessStartsBelowTheServingOne(t *testing.T) {
	b := newTestBox(t, Unit{Restart: "on-failure"}, "FAKE_READY_DELAY=2500ms\n", "v1", "v2")
	if err := b.sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := niceness()
	lowered := base < StartNice && canRaiseTo(base)
	old := b.sup.Status().Active.PID
	if n, err := processNice(old); err != nil || n != base {
		t.Fatalf("serving process nice %d (%v), want %d", n, err, base)
	}
	b.point("v2")
	done := make(chan error, 1)
	go func() { _, err := b.sup.Reload(context.Background()); done <- err }()
	// While v2 starts (it waits 2.5 s before READY=1), find it by its "serving" line.
	spawned := time.Now()
	var pid int
	for deadline := time.Now().Add(5 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, l := range b.sup.Logs(50) {
			if strings.Contains(l, " v2: ") && strings.Contains(l, `"msg":"serving"`) {
				if i := strings.Index(l, `"pid":`); i >= 0 {
					pid, _ = strconv.Atoi(strings.TrimRight(l[i+6:], "}"))
				}
			}
		}
	}
	if pid == 0 {
		t.Fatal("the new process never said it was serving")
	}
	want := base
	if lowered {
		want = StartNice
	}
	if n, err := processNice(pid); err != nil || n != want {
		t.Errorf("starting process nice %d (%v), want %d", n, err, want)
	}
	if n, _ := processNice(old); n != base {
		t.Errorf("serving process nice %d while the new one starts, want %d", n, base)
	}
	// Past StartLowFor a process still starting gets the priority back before READY=1: a
	// busy box must not starve a release.
	time.Sleep(time.Until(spawned.Add(StartLowFor + 500*time.Millisecond)))
	select {
	case err := <-done:
		t.Fatalf("reload returned before READY=1: %v", err)
	default:
	}
	if n, err := processNice(pid); err != nil || n != base {
		t.Errorf("process still starting after %s at nice %d (%v), want %d", StartLowFor, n, err, base)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, err := processNice(pid); err != nil || n != base {
		t.Errorf("ready process nice %d (%v), want %d", n, err, base)
	}
	// Every thread, not only the main one.
	tasks, _ := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		if n, err := processNice(tid); err == nil && n != base {
			t.Errorf("thread %d of the ready process at nice %d, want %d", tid, n, base)
		}
	}
	if niceness() != base {
		t.Errorf("the supervisor's own priority changed: %d, was %d", niceness(), base)
	}
	t.Logf("nice while starting %d, when ready %d (lowered: %v)", want, base, lowered)
}
