// Package tools builds the Go programs the toolkit runs (versitygw, kumo, restic, packer) from the
// pinned modules under tools/<name>, once per version, into a cache directory outside the
// repository, and hands back their paths. A second call is a stat.
package tools

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// Tool is one pinned program.
type Tool struct {
	Name    string // restic, versitygw, kumo
	Module  string // module whose version is pinned in tools/<Name>/go.mod
	Package string // main package to build (relative ones live in tools/<Name>)
	Suffix  string // of the cached binary's name, when Package is not the module's own command
}

// Known lists the pinned tools.
var Known = map[string]Tool{
	"restic":    {Name: "restic", Module: "github.com/restic/restic", Package: "github.com/restic/restic/cmd/restic"},
	"versitygw": {Name: "versitygw", Module: "github.com/versity/versitygw", Package: "github.com/versity/versitygw/cmd/versitygw"},
	// The server only (tools/kumo/cmd/zops-kumo): kumo's cmd/kumo also links its CLI and with it
	// 121 AWS SDK service packages, minutes of compiling on a fresh machine for nothing.
	"kumo": {Name: "kumo", Module: "github.com/sivchari/kumo", Package: "./cmd/zops-kumo", Suffix: "-server"},
	// Packer core stays on the 1.9 line: the last MPL releases (1.10 and later are BSL).
	// Its cold build takes ~11 minutes on two cores.
	"packer": {Name: "packer", Module: "github.com/hashicorp/packer", Package: "github.com/hashicorp/packer"},
}

// CacheDir is where built tools live: $ZOPS_CACHE_DIR, else the user cache dir.
func CacheDir() string {
	if d := config.CacheDirOverride(); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "zmanim-ops")
}

// locks serialises builds of one tool (a second caller waits and then finds the binary) while
// different tools build at the same time: twin:up starts them together.
var (
	locksMu sync.Mutex
	locks   = map[string]*sync.Mutex{}
)

func lock(name string) func() {
	locksMu.Lock()
	l, ok := locks[name]
	if !ok {
		l = &sync.Mutex{}
		locks[name] = l
	}
	locksMu.Unlock()
	l.Lock()
	return l.Unlock
}

// Version returns the pinned version of a tool, read from tools/<name>/go.mod.
func Version(name string) (string, error) {
	t, ok := Known[name]
	if !ok {
		return "", fmt.Errorf("unknown tool %q", name)
	}
	gomod := filepath.Join(config.RepoRoot(), "tools", name, "go.mod")
	f, err := os.Open(gomod)
	if err != nil {
		return "", fmt.Errorf("pinned version of %s: %w", name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == t.Module {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("%s does not pin %s; run `go get %s@<version>` in tools/%s", gomod, t.Module, t.Module, name)
}

// Ensure returns the path of the pinned build of a tool, building it first if needed.
// Building takes one to three minutes the first time on a cold machine (packer: ~11) and is logged.
func Ensure(ctx context.Context, name string) (string, error) {
	defer lock(name)()
	t := Known[name]
	v, err := Version(name)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(CacheDir(), "bin", name+"-"+v+t.Suffix)
	if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	fmt.Fprintf(os.Stderr, "building %s %s (once per version; cached in %s)\n", name, v, filepath.Dir(bin))
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, t.Package)
	cmd.Dir = filepath.Join(config.RepoRoot(), "tools", name)
	// kumo's dependency graph holds an old aws-sdk-go-v2 module the checksum database lacks;
	// go.sum carries its hash, and this keeps a cold module cache from asking for it.
	cmd.Env = append(os.Environ(), "GONOSUMDB=github.com/aws/aws-sdk-go-v2", "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("build %s %s in tools/%s: %w", name, v, name, err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	return bin, nil
}
