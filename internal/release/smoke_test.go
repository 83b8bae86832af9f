package release

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/onbox"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// versioned copies the fake API into dir/<version>/zmanim-api (it reports its directory name).
func versioned(t *testing.T, src, version string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), version, "zmanim-api")
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	b, err := os.ReadFile(src)
	must(t, err)
	must(t, os.WriteFile(p, b, 0o755))
	return p
}

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	envFile := filepath.Join(t.TempDir(), "api.env")
	must(t, os.WriteFile(envFile, []byte("ZMANIM_DATABASE_URL=postgres://x\nZMANIM_FAIL_IF_VERSION=v1\n"), 0o600))
	host := onbox.Artifact{Name: "zmanim-api", Arch: runtime.GOARCH, Path: versioned(t, fakeHost, "v1")}
	tests := []struct {
		name    string
		s       Smoke
		wantErr string
	}{
		{"native --version", Smoke{Version: "v1"}, ""},
		{"wrong version", Smoke{Version: "v2"}, "want version v2"},
		// Only DB/Redis/JWT settings reach the smoke test: the box's own hook does not.
		{"native /health", Smoke{Version: "v1", EnvFile: envFile}, ""},
		{"missing emulator", Smoke{Version: "v1", Emu: "qemu-nonexistent-static"}, "apt-get install qemu-user-static"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			a := host
			if tc.name == "missing emulator" {
				a = onbox.Artifact{Name: "zmanim-api", Arch: foreignArch, Path: versioned(t, fakeForeign, "v1")}
			}
			s.Binary = func() (onbox.Artifact, bool) { return a, true }
			err := s.Run(ctx)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Run = %v, want %q", err, tc.wantErr)
			}
		})
	}
	if skip, why := (&Smoke{Emu: "off"}).Skip(ctx); !skip || why != "ZOPS_SMOKE=0" {
		t.Fatalf("Skip with ZOPS_SMOKE=0: %v %q", skip, why)
	}
	if skip, _ := (&Smoke{}).Skip(ctx); skip {
		t.Fatal("skipped by default")
	}
	if got := (&Smoke{EnvFile: "x"}).String(); got != "smoke-test the box binary (--version and /health)" {
		t.Fatalf("String() = %q", got)
	}
}

// TestSmokeUnderQemu runs the arm64 build under qemu-user, --version and /health over a
// socket passed with LISTEN_FDS, as the release does on an amd64 machine.
func TestSmokeUnderQemu(t *testing.T) {
	if foreignArch != "arm64" {
		t.Skip("host is arm64: nothing to emulate")
	}
	if _, err := exec.LookPath("qemu-aarch64-static"); err != nil {
		if testenv.Required() {
			t.Fatal("qemu-aarch64-static missing: apt-get install qemu-user-static")
		}
		t.Skip("qemu-aarch64-static missing")
	}
	envFile := filepath.Join(t.TempDir(), "api.env")
	must(t, os.WriteFile(envFile, nil, 0o600))
	a := onbox.Artifact{Name: "zmanim-api", Arch: "arm64", Path: versioned(t, fakeForeign, "v7")}
	s := &Smoke{Version: "v7", EnvFile: envFile, Binary: func() (onbox.Artifact, bool) { return a, true }}
	must(t, s.Run(context.Background()))
}

func TestGetHealth(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Origin-Verify") != "s3cret" {
			w.WriteHeader(403)
			w.Write([]byte(`{"message":"no"}`))
			return
		}
		w.Write([]byte(`{"status":"ok","version":"v9"}`))
	}))
	url := "http://" + ln.Addr().String() + "/health"
	v, code, err := onbox.GetHealth(context.Background(), http.DefaultClient, url, http.Header{"X-Origin-Verify": {"s3cret"}})
	if err != nil || code != 200 || v != "v9" {
		t.Fatalf("GetHealth = %q %d %v", v, code, err)
	}
	if _, code, _ := onbox.GetHealth(context.Background(), http.DefaultClient, url, nil); code != 403 {
		t.Fatalf("without the header: %d", code)
	}
}
