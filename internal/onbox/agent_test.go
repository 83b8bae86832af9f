package onbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/box"
)

// supervisor adapts an in-process *box.Supervisor to the control API interface.
type supervisor struct{ s *box.Supervisor }

func (a supervisor) Reload(ctx context.Context) (box.Process, error) { return a.s.Reload(ctx) }
func (a supervisor) Logs(ctx context.Context, n int) (string, error) {
	return strings.Join(a.s.Logs(n), "\n"), nil
}

// testHost is a box root with a running supervisor serving release v0.
type testHost struct {
	t     *testing.T
	st    *MemStore
	agent *Agent
	sup   *box.Supervisor
	url   string
	env   string
}

func newHost(t *testing.T) *testHost {
	t.Helper()
	root := t.TempDir()
	st := NewMemStore("rel")
	publish(t, st, "v0")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	h := &testHost{t: t, st: st, url: "http://" + ln.Addr().String(), env: filepath.Join(root, "etc", "zmanim", "api.env")}
	must(t, os.MkdirAll(filepath.Dir(h.env), 0o755))
	must(t, os.WriteFile(h.env, nil, 0o644))
	h.agent = &Agent{Root: root, Binary: "zmanim-api", Arch: hostArch(), Store: st, HealthURL: h.url + "/health", HealthTimeout: 2 * time.Second, Keep: 3}
	must(t, h.agent.Install(context.Background(), "v0"))
	must(t, h.agent.swap("v0"))
	sup, err := box.New(box.Options{Listener: ln, Binary: filepath.Join(h.agent.Dir(), "current", "zmanim-api"), EnvFile: h.env, RunDir: filepath.Join(root, "run"),
		Unit:        box.Unit{Restart: "on-failure", RestartSec: 100 * time.Millisecond, TimeoutStartSec: 5 * time.Second, TimeoutStopSec: 5 * time.Second},
		BeforeStart: func() error { _, err := RecoverPending(root, nil); return err }}) // as zops-box run does
	must(t, err)
	must(t, sup.Start(context.Background()))
	t.Cleanup(sup.Stop)
	h.sup = sup
	h.agent.Supervisor = supervisor{sup}
	return h
}

func hostArch() string {
	return map[string]string{"arm64": "arm64", "amd64": "amd64"}[strings.TrimPrefix(filepath.Base(fakeHost), "fake-")]
}

func (h *testHost) serving() string {
	h.t.Helper()
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	v, code, err := GetHealth(context.Background(), c, h.url+"/health", nil)
	if err != nil || code != 200 {
		h.t.Fatalf("health: %v %d", err, code)
	}
	return v
}

// underLoad runs f while 8 workers send requests; it returns the failures.
func (h *testHost) underLoad(f func()) (ok, failed int64, errs []string) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var okN, failN atomic.Int64
	var mu sync.Mutex
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: i%2 == 0}}
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				resp, err := c.Get(fmt.Sprintf("%s/health?i=%d", h.url, i))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failN.Add(1)
					mu.Lock()
					if len(errs) < 5 {
						errs = append(errs, err.Error())
					}
					mu.Unlock()
					continue
				}
				okN.Add(1)
			}
		}(i)
	}
	time.Sleep(100 * time.Millisecond)
	f()
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	return okN.Load(), failN.Load(), errs
}

func TestAgentDeploy(t *testing.T) {
	ctx := context.Background()
	h := newHost(t)
	publish(t, h.st, "v1")
	var out Outcome
	var err error
	ok, failed, errs := h.underLoad(func() { out, err = h.agent.Deploy(ctx, "v1") })
	if err != nil {
		t.Fatalf("deploy v1: %v", err)
	}
	if failed != 0 || ok < 20 {
		t.Fatalf("%d ok, %d failed during the release: %v", ok, failed, errs)
	}
	if out.Previous != "v0" || out.RolledBack || h.serving() != "v1" {
		t.Fatalf("outcome %+v, serving %s", out, h.serving())
	}
	if cur, _ := h.agent.Current(); cur != "v1" {
		t.Fatalf("current -> %s", cur)
	}
	if fi, err := os.Lstat(filepath.Join(h.agent.Dir(), "current")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("current is not a symlink: %v", err)
	}
	// Redeploying the current version is a reload of identical bytes, not an error.
	if _, err := h.agent.Deploy(ctx, "v1"); err != nil {
		t.Fatalf("redeploy v1: %v", err)
	}
}

func TestAgentRollsBack(t *testing.T) {
	tests := []struct {
		name, env, wantLog string
		maxFailed          int64 // requests that may fail
	}{
		// The acceptance case: the new process never gets ready, the old one never stops.
		{"process exits at start", "ZMANIM_FAIL_IF_VERSION=v2\n", "refusing to start", 0},
		{"process exits at start (control API over HTTP)", "ZMANIM_FAIL_IF_VERSION=v2\n", "refusing to start", 0},
		// Ready but unhealthy: it served (503s) from READY=1 until the gate gave up, which it
		// does early on consecutive failures of the new version, not after the whole timeout.
		{"health never reports ok", "FAKE_UNHEALTHY=v2\n", `"msg":"serving","version":"v2"`, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHost(t)
			h.agent.HealthTimeout = 10 * time.Second
			if strings.Contains(tc.name, "HTTP") {
				srv := httptest.NewServer(h.sup.Handler("/_twin/box/"))
				defer srv.Close()
				h.agent.Supervisor = &box.Client{Base: srv.URL + "/_twin/box/"}
			}
			publish(t, h.st, "v2")
			t0 := time.Now()
			defer func() {
				if d := time.Since(t0); d > 6*time.Second {
					t.Errorf("the failed release took %s: the gate should give up early on a failing new version", d)
				}
			}()
			must(t, os.WriteFile(h.env, []byte(tc.env), 0o644))
			var out Outcome
			var err error
			ok, failed, errs := h.underLoad(func() { out, err = h.agent.Deploy(ctx, "v2") })
			if !errors.Is(err, ErrHealthGate) {
				t.Fatalf("deploy of a broken v2: %v, want ErrHealthGate", err)
			}
			if !strings.Contains(err.Error(), tc.wantLog) || !strings.Contains(out.Logs, tc.wantLog) {
				t.Fatalf("the error does not show the failed process's log lines (%q):\n%v", tc.wantLog, err)
			}
			if n := strings.Count(err.Error(), tc.wantLog); tc.maxFailed == 0 && n != 1 {
				t.Fatalf("the log line appears %d times in the error, want once:\n%v", n, err)
			}
			if !out.RolledBack || out.Previous != "v0" {
				t.Fatalf("outcome %+v", out)
			}
			if cur, _ := h.agent.Current(); cur != "v0" {
				t.Fatalf("current -> %s after rollback", cur)
			}
			if v := h.serving(); v != "v0" {
				t.Fatalf("serving %s after rollback", v)
			}
			if (tc.maxFailed >= 0 && failed > tc.maxFailed) || ok < 20 {
				t.Fatalf("%d ok, %d failed during the failed release: %v", ok, failed, errs)
			}
			t.Logf("%d ok, %d failed", ok, failed)
		})
	}
}

func TestAgentRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	h := newHost(t)
	arch := h.agent.Arch
	// A release whose binary for the box's arch is for another machine (same sha in the
	// manifest, so only the ELF check can catch it).
	publishBins(t, h.st, "v-wrongarch", map[string]string{arch: fakeForeign})
	publish(t, h.st, "v-corrupt")
	h.st.Corrupt = func(key string, b []byte) []byte {
		if strings.HasPrefix(key, "releases/v-corrupt/") && strings.HasSuffix(key, "/zmanim-api") {
			b[100] ^= 1
		}
		return b
	}
	tests := []struct {
		version string
		want    error
		text    string
	}{
		{"v-corrupt", ErrChecksum, "nothing was installed"},
		{"v-wrongarch", ErrWrongArch, "ELF machine"},
		{"v-never", ErrNoRelease, "release:history"},
		{"../etc", nil, "use 1-100 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.version, func(t *testing.T) {
			_, err := h.agent.Deploy(ctx, tc.version)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("deploy %s: %v, want %v (%q)", tc.version, err, tc.want, tc.text)
			}
			if _, err := os.Stat(filepath.Join(h.agent.releases(), tc.version)); err == nil {
				t.Fatalf("%s was installed", tc.version)
			}
			if cur, _ := h.agent.Current(); cur != "v0" {
				t.Fatalf("current -> %s", cur)
			}
			if v := h.serving(); v != "v0" {
				t.Fatalf("serving %s", v)
			}
		})
	}
}

func TestAgentPrune(t *testing.T) {
	ctx := context.Background()
	h := newHost(t)
	for _, v := range []string{"v1", "v2", "v3", "v4"} {
		publish(t, h.st, v)
		must(t, h.agent.Install(ctx, v))
		time.Sleep(20 * time.Millisecond) // distinct install times
	}
	// current is v0 (the oldest); rollback target v1; keep 3 of 5 installed.
	removed, err := h.agent.Prune("v1")
	must(t, err)
	got, _ := h.agent.Installed()
	if strings.Join(removed, ",") != "v2,v3" || strings.Join(got, ",") != "v0,v1,v4" {
		t.Fatalf("removed %v, left %v; want v2,v3 removed and the current v0 and rollback target v1 kept", removed, got)
	}
}

func TestCheckELF(t *testing.T) {
	host, _ := os.ReadFile(fakeHost)
	foreign, _ := os.ReadFile(fakeForeign)
	if err := CheckELF(host, hostArch()); err != nil {
		t.Fatal(err)
	}
	if err := CheckELF(foreign, hostArch()); !errors.Is(err, ErrWrongArch) {
		t.Fatalf("foreign: %v", err)
	}
	if err := CheckELF([]byte("#!/bin/sh\n"), "arm64"); !errors.Is(err, ErrWrongArch) {
		t.Fatalf("script: %v", err)
	}
}
