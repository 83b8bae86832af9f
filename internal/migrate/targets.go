package migrate

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// DefaultDumpDir is where migrate:dump writes and migrate:restore reads by default.
const DefaultDumpDir = ".state/migrate/dump"

// argURL turns "-" or "" into "" so the environment variable is used.
func argURL(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

func envJobs() (int, error) {
	v := os.Getenv("ZOPS_MIGRATE_JOBS")
	if v == "" {
		return max(runtime.NumCPU(), 2), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("ZOPS_MIGRATE_JOBS=%q: want a positive integer", v)
	}
	return n, nil
}

func envDir() string {
	if d := os.Getenv("ZOPS_MIGRATE_DIR"); d != "" {
		return d
	}
	return DefaultDumpDir
}

// DumpTarget is `mage migrate:dump SOURCE_URL`.
func DumpTarget(ctx context.Context, source string, out io.Writer) error {
	src, _, err := ResolveURLs([]string{argURL(source)}, true, false)
	if err != nil {
		return err
	}
	jobs, err := envJobs()
	if err != nil {
		return err
	}
	var extra []string
	if v := os.Getenv("ZOPS_MIGRATE_DUMP_ARGS"); v != "" {
		extra = strings.Fields(v)
	}
	_, err = Dump(ctx, DumpOptions{SourceURL: src, Dir: envDir(), Jobs: jobs, Out: out, ExtraArgs: extra})
	return err
}

// RestoreTarget is `mage migrate:restore TARGET_URL`.
func RestoreTarget(ctx context.Context, target string, out io.Writer) error {
	_, tgt, err := ResolveURLs([]string{"", argURL(target)}, false, true)
	if err != nil {
		return err
	}
	jobs, err := envJobs()
	if err != nil {
		return err
	}
	return Restore(ctx, RestoreOptions{
		TargetURL: tgt, Dir: envDir(), Jobs: jobs, Out: out,
		KeepOwners:             truthy(os.Getenv("ZOPS_MIGRATE_KEEP_OWNERS")),
		AllowNonEmpty:          truthy(os.Getenv("ZOPS_MIGRATE_ALLOW_NONEMPTY")),
		AllowExtensionMismatch: truthy(os.Getenv("ZOPS_MIGRATE_ALLOW_EXTENSION_MISMATCH")),
		UseList:                os.Getenv("ZOPS_MIGRATE_USE_LIST"),
	})
}

// VerifyTarget is `mage migrate:verify SOURCE_URL TARGET_URL`.
func VerifyTarget(ctx context.Context, source, target string, out io.Writer) error {
	src, tgt, err := ResolveURLs([]string{argURL(source), argURL(target)}, true, true)
	if err != nil {
		return err
	}
	o, err := VerifyOptionsFromEnv()
	if err != nil {
		return err
	}
	o.SourceURL, o.TargetURL, o.Out = src, tgt, out
	_, err = RunVerify(ctx, o)
	return err
}

// SmokeTarget is `mage migrate:smoke SOURCE_URL TARGET_URL`.
func SmokeTarget(ctx context.Context, source, target string, out io.Writer) error {
	src, tgt, err := ResolveURLs([]string{argURL(source), argURL(target)}, true, true)
	if err != nil {
		return err
	}
	path := os.Getenv("ZOPS_SMOKE_ENDPOINTS")
	if path == "" {
		path = DefaultSmokeEndpoints
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("endpoint list: %w (set ZOPS_SMOKE_ENDPOINTS)", err)
	}
	eps, err := ParseEndpoints(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("endpoint list %s: %w", path, err)
	}
	o := SmokeOptions{SourceURL: src, TargetURL: tgt, Endpoints: eps, APIBinary: os.Getenv("ZOPS_SMOKE_API_BIN"),
		RepoRoot: ".", ReportPath: os.Getenv("ZOPS_SMOKE_REPORT"), Out: out}
	if o.ReportPath == "" {
		o.ReportPath = filepath.Join(".state", "migrate", "smoke-"+time.Now().UTC().Format("20060102T150405Z")+".json")
	}
	if v := os.Getenv("ZOPS_SMOKE_REDIS_ADDRS"); v != "" {
		o.RedisAddrs = strings.Split(v, ",")
	}
	_, err = Smoke(ctx, o)
	return err
}
