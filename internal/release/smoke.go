package release

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// Smoke runs the box's binary (linux/arm64 under qemu-user on an amd64 host, natively on an
// arm64 host) and checks that it is the version just built: `--version` always, and, when
// EnvFile names the twin's API environment, it also starts the binary on a socket passed the
// way systemd passes it (LISTEN_FDS) and requires GET /health to answer 200 with the
// version. Only the database, Redis and JWT settings of EnvFile are passed: the smoke tests
// the build, the box's own settings are tested by the deploy's health gate.
type Smoke struct {
	Binary  func() (onbox.Artifact, bool) // the artifact to run (filled by the build)
	Version string
	Emu     string // emulator for foreign archs (default qemu-<arch>-static)
	EnvFile string // optional: API environment for the /health check
	Timeout time.Duration
	Out     io.Writer
}

func (s *Smoke) String() string {
	what := "--version"
	if s.EnvFile != "" {
		what += " and /health"
	}
	return fmt.Sprintf("smoke-test the box binary (%s)", what)
}

// Skip skips when ZOPS_SMOKE=0 was set (Emu is "off").
func (s *Smoke) Skip(ctx context.Context) (bool, string) {
	if s.Emu == "off" {
		return true, "ZOPS_SMOKE=0"
	}
	return false, ""
}

// command returns the argv prefix that runs a binary of arch here.
func (s *Smoke) command(arch string) ([]string, error) {
	if arch == runtime.GOARCH {
		return nil, nil
	}
	emu := s.Emu
	if emu == "" {
		q := map[string]string{"arm64": "aarch64", "amd64": "x86_64"}[arch]
		if q == "" {
			q = arch
		}
		emu = "qemu-" + q + "-static"
	}
	p, err := exec.LookPath(emu)
	if err != nil {
		return nil, fmt.Errorf("%s not found: install Debian's qemu-user-static (apt-get install qemu-user-static) to run linux/%s binaries here, or set ZOPS_SMOKE=0", emu, arch)
	}
	return []string{p}, nil
}

// Run runs the checks.
func (s *Smoke) Run(ctx context.Context) error {
	a, ok := s.Binary()
	if !ok {
		return fmt.Errorf("no binary to smoke-test")
	}
	pre, err := s.command(a.Arch)
	if err != nil {
		return err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	vctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv := append(append([]string{}, pre...), a.Path, "--version")
	out, err := exec.CommandContext(vctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --version: %w: %s", a.Path, err, strings.TrimSpace(string(out)))
	}
	if !strings.Contains(string(out), " "+s.Version+" ") {
		return fmt.Errorf("%s --version printed %q, want version %s", a.Path, strings.TrimSpace(string(out)), s.Version)
	}
	if s.Out != nil {
		fmt.Fprintf(s.Out, "  %s\n", strings.TrimSpace(string(out)))
	}
	if s.EnvFile == "" {
		return nil
	}
	return s.health(ctx, pre, a, timeout)
}

// smokeEnv are the settings taken from the API environment file.
var smokeEnv = []string{"ZMANIM_DATABASE_URL", "ZMANIM_REDIS_ADDR", "ZMANIM_JWKS_URL", "ZMANIM_JWT_ISSUER", "ZMANIM_JWT_AUDIENCE"}

func (s *Smoke) health(ctx context.Context, pre []string, a onbox.Artifact, timeout time.Duration) error {
	all, err := onbox.ReadEnvFile(s.EnvFile)
	if err != nil {
		return err
	}
	env := []string{"PATH=/usr/bin:/bin", "LISTEN_FDS=1"}
	for _, k := range smokeEnv {
		if v, ok := all[k]; ok {
			env = append(env, k+"="+v)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	defer lf.Close()
	argv := append(append([]string{}, pre...), a.Path, "serve")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.ExtraFiles = []*os.File{lf}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s serve: %w", a.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-done
	}()
	url := "http://" + ln.Addr().String() + "/health"
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("%s serve exited during the smoke test: %v\n--- output ---\n%s", a.Name, err, tail(logs.String(), 20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		v, code, err := onbox.GetHealth(ctx, hc, url, nil)
		if err == nil && code == http.StatusOK && v == s.Version {
			if s.Out != nil {
				fmt.Fprintf(s.Out, "  GET /health: 200, version %s\n", v)
			}
			return nil
		}
		last = fmt.Sprintf("status %d version %q err %v", code, v, err)
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s serve: /health did not answer 200 with version %s within %s (last: %s)\n--- output ---\n%s", a.Name, s.Version, timeout, last, tail(logs.String(), 20))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
