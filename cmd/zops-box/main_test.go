package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunReloadStatus runs the agent as systemd would (socket on fd 3 with LISTEN_FDS) over
// a fake API, then reloads it with `zops-box reload` and reads `status` and `logs`.
func TestRunReloadStatus(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "zops-box")
	fake := filepath.Join(dir, "fakeapi")
	for out, pkg := range map[string]string{bin: ".", fake: "../../internal/box/testdata/fakeapi"} {
		if o, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, o)
		}
	}
	root := filepath.Join(dir, "root")
	for _, v := range []string{"v1", "v2"} {
		d := filepath.Join(root, "opt", "zmanim", "releases", v)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(fake)
		if err := os.WriteFile(filepath.Join(d, "zmanim-api"), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(v string) {
		tmp := filepath.Join(root, "opt", "zmanim", "current.tmp")
		_ = os.Remove(tmp)
		if err := os.Symlink(filepath.Join("releases", v), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(root, "opt", "zmanim", "current")); err != nil {
			t.Fatal(err)
		}
	}
	link("v1")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc", "zmanim"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "run", "zmanim"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc", "zmanim", "api.env"), nil, 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer ln.Close()
	lf, err := ln.(*net.TCPListener).File()
	must(err)
	run := exec.Command(bin, "run", "--root", root, "--binary", filepath.Join(root, "opt", "zmanim", "current", "zmanim-api"),
		"--env-file", filepath.Join(root, "etc", "zmanim", "api.env"), "--unit", "../../deploy/systemd/zmanim-api.service")
	run.Env = []string{"LISTEN_FDS=1", "PATH=/usr/bin:/bin"}
	run.ExtraFiles = []*os.File{lf}
	var out strings.Builder
	run.Stdout, run.Stderr = &out, &out
	must(run.Start())
	defer func() { _ = run.Process.Kill(); _ = run.Wait() }()
	lf.Close()
	health := func() string {
		resp, err := http.Get("http://" + ln.Addr().String() + "/health")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var h struct{ Version string }
		_ = json.NewDecoder(resp.Body).Decode(&h)
		return h.Version
	}
	deadline := time.Now().Add(10 * time.Second)
	for health() != "v1" {
		if time.Now().After(deadline) {
			t.Fatalf("v1 never served; agent output:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctl := func(args ...string) string {
		o, err := exec.Command(bin, append(args, "--root", root)...).CombinedOutput()
		if err != nil {
			t.Fatalf("zops-box %v: %v\n%s", args, err, o)
		}
		return string(o)
	}
	link("v2")
	if o := ctl("reload"); !strings.Contains(o, "reloaded: v2") {
		t.Fatalf("reload: %s", o)
	}
	if v := health(); v != "v2" {
		t.Fatalf("serving %s after reload", v)
	}
	if o := ctl("status"); !strings.Contains(o, `"version": "v2"`) || !strings.Contains(o, `"state": "running"`) {
		t.Fatalf("status: %s", o)
	}
	if o := ctl("logs"); !strings.Contains(o, "v2") {
		t.Fatalf("logs: %s", o)
	}
	// Without a socket from systemd it refuses to run.
	o, err := exec.Command(bin, "run", "--root", root).CombinedOutput()
	if err == nil || !strings.Contains(string(o), "LISTEN_FDS") {
		t.Fatalf("run without a socket: %v %s", err, o)
	}
}

// When the supervisor gives up after its start limit, zops-box must exit non-zero: systemd then
// shows zmanim-api.service failed (and restarts it) instead of an active unit serving nothing.
func TestRunExitsWhenSupervisorGivesUp(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "zops-box")
	fake := filepath.Join(dir, "fakeapi")
	for out, pkg := range map[string]string{bin: ".", fake: "../../internal/box/testdata/fakeapi"} {
		if o, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, o)
		}
	}
	root := filepath.Join(dir, "root")
	rel := filepath.Join(root, "opt", "zmanim", "releases", "v1")
	for _, d := range []string{rel, filepath.Join(root, "etc", "zmanim"), filepath.Join(root, "run", "zmanim")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(fake)
	os.WriteFile(filepath.Join(rel, "zmanim-api"), b, 0o755)
	env := filepath.Join(root, "etc", "zmanim", "api.env")
	os.WriteFile(env, []byte("FAKE_EXIT_AFTER=20ms\n"), 0o600)
	unit := filepath.Join(dir, "zmanim-api.service")
	os.WriteFile(unit, []byte("[Service]\nType=notify\nRestart=on-failure\nRestartSec=10ms\n"), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lf, _ := ln.(*net.TCPListener).File()
	run := exec.Command(bin, "run", "--root", root, "--binary", filepath.Join(rel, "zmanim-api"), "--env-file", env, "--unit", unit)
	run.Env = []string{"LISTEN_FDS=1", "PATH=/usr/bin:/bin"}
	run.ExtraFiles = []*os.File{lf}
	var out strings.Builder
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(out.String(), "giving up") {
			t.Fatalf("zops-box run exited with %v after the start limit, want non-zero and 'giving up':\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		_ = run.Process.Kill()
		t.Fatalf("zops-box run still running after its API failed past the start limit:\n%s", out.String())
	}
}

func TestInstallNeedsABucketAndAVersion(t *testing.T) {
	for _, args := range [][]string{{"install"}, {"install", "v1"}, {"install", "--bucket", "b"}} {
		err := run(args)
		if err == nil || !strings.Contains(err.Error(), "usage: zops-box install --bucket BUCKET VERSION") {
			t.Errorf("run %v = %v", args, err)
		}
	}
}

// `zops-box install` runs beside the API serving: it lowers every thread of its own to
// nice 10 before downloading (this test process is lowered with it).
func TestInstallLowersItsPriority(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := install(ctx, t.TempDir(), "b", "eu-west-1", "zmanim-api", 10, "v1"); err == nil {
		t.Fatal("install succeeded with no S3 server")
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		if f[16] != "10" {
			t.Errorf("thread %s at nice %s, want 10", task.Name(), f[16])
		}
	}
}
