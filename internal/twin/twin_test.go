package twin

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

func localEnv(t *testing.T) *config.Env {
	t.Helper()
	t.Setenv("ZOPS_STATE_DIR", filepath.Join(t.TempDir(), ".state", "twin"))
	env, err := config.LoadWith(config.Options{Env: "local", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestNotATwin(t *testing.T) {
	env, err := config.LoadWith(config.Options{Env: "prod", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(env, nil); err == nil || !strings.Contains(err.Error(), "not a local twin") {
		t.Fatalf("err = %v", err)
	}
}

// A port held by another program fails the start with the field and the fix, and leaves
// nothing running.
func TestPortInUseFailsCleanly(t *testing.T) {
	if _, err := os.Stat("/usr/bin/redis-server"); err != nil {
		if testenv.Required() {
			t.Fatal("needs the Debian packages: apt-get install redis-server postgresql-15-postgis-3")
		}
		t.Skip("needs the Debian packages (installed by .ci/run)")
	}
	env := localEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// Move every port to a free range so a running twin does not interfere, then block S3.
	base := 30000 + os.Getpid()%20000
	ps := &env.Twin.Ports
	for i, p := range []*int{&ps.S3, &ps.AWS, &ps.Postgres, &ps.Redis, &ps.JWT, &ps.Box, &ps.Gateway, &ps.Edge, &ps.Control} {
		*p = base + i
	}
	ps.S3 = port
	var out bytes.Buffer
	tw, err := New(env, &out)
	if err != nil {
		t.Fatal(err)
	}
	err = tw.Up(context.Background())
	if err == nil {
		t.Fatal("twin started on a port in use")
	}
	for _, want := range []string{"twin.ports.s3", strconv.Itoa(port), "in use", "zmanim-ops.yaml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	for _, name := range []string{"versitygw", "kumo", "redis", "zops-twind"} {
		if pid, ok := (proc{name, tw.st}).pid(); ok {
			t.Errorf("%s left running (pid %d)", name, pid)
		}
	}
	if _, ok := tw.pgRunning(); ok {
		t.Error("postgres left running")
	}
}
