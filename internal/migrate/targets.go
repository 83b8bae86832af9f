package migrate

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/opts"
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

// Options are the ZOPS_MIGRATE_* and ZOPS_SMOKE_* options of the migrate targets.
type Options struct {
	URLs     [2]string // ZOPS_MIGRATE_SOURCE_URL, ZOPS_MIGRATE_TARGET_URL
	Dir      string
	Jobs     int
	DumpArgs []string
	Restore  RestoreOptions // KeepOwners, AllowNonEmpty, AllowExtensionMismatch, UseList
	Verify   VerifyOptions  // ReportPath, Checksum
	Smoke    struct {
		Endpoints, APIBinary, Report string
		RedisAddrs                   []string
	}
}

// ReadOptions reads the migrate targets' options.
func ReadOptions(r *opts.Reader) Options {
	o := Options{
		URLs:     [2]string{r.String(EnvSourceURL, ""), r.String(EnvTargetURL, "")},
		Dir:      r.String("ZOPS_MIGRATE_DIR", DefaultDumpDir),
		Jobs:     r.PositiveInt("ZOPS_MIGRATE_JOBS", max(runtime.NumCPU(), 2)),
		DumpArgs: strings.Fields(r.String("ZOPS_MIGRATE_DUMP_ARGS", "")),
	}
	o.Restore.KeepOwners = r.Bool("ZOPS_MIGRATE_KEEP_OWNERS", false)
	o.Restore.AllowNonEmpty = r.Bool("ZOPS_MIGRATE_ALLOW_NONEMPTY", false)
	o.Restore.AllowExtensionMismatch = r.Bool("ZOPS_MIGRATE_ALLOW_EXTENSION_MISMATCH", false)
	o.Restore.UseList = r.String("ZOPS_MIGRATE_USE_LIST", "")
	c := &o.Verify.Checksum
	c.Parallel = r.PositiveInt("ZOPS_MIGRATE_PARALLEL", 0)
	c.MaxRows = r.PositiveInt("ZOPS_MIGRATE_MAX_ROWS", 0)
	c.RangeBytes = int64(r.PositiveInt("ZOPS_MIGRATE_RANGE_MB", 0)) << 20
	for _, t := range r.List("ZOPS_MIGRATE_TABLES") {
		if !strings.Contains(t, ".") {
			t = "public." + t
		}
		c.Tables = append(c.Tables, t)
	}
	c.NoSnapshot = r.Bool("ZOPS_MIGRATE_NO_SNAPSHOT", false)
	o.Verify.ReportPath = r.String("ZOPS_MIGRATE_REPORT", "")
	o.Smoke.Endpoints = r.String("ZOPS_SMOKE_ENDPOINTS", DefaultSmokeEndpoints)
	o.Smoke.APIBinary = r.String("ZOPS_SMOKE_API_BIN", "")
	o.Smoke.Report = r.String("ZOPS_SMOKE_REPORT", "")
	if v := r.String("ZOPS_SMOKE_REDIS_ADDRS", ""); v != "" {
		o.Smoke.RedisAddrs = strings.Split(v, ",")
	}
	return o
}

func readOptions() (Options, error) {
	r := opts.New()
	o := ReadOptions(r)
	return o, r.Err()
}

// DumpTarget is `mage migrate:dump SOURCE_URL`.
func DumpTarget(ctx context.Context, out io.Writer, source string) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	src, _, err := ResolveURLs([]string{argURL(source)}, o.URLs, true, false)
	if err != nil {
		return err
	}
	_, err = Dump(ctx, DumpOptions{SourceURL: src, Dir: o.Dir, Jobs: o.Jobs, Out: out, ExtraArgs: o.DumpArgs})
	return err
}

// RestoreTarget is `mage migrate:restore TARGET_URL`.
func RestoreTarget(ctx context.Context, out io.Writer, target string) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	_, tgt, err := ResolveURLs([]string{"", argURL(target)}, o.URLs, false, true)
	if err != nil {
		return err
	}
	ro := o.Restore
	ro.TargetURL, ro.Dir, ro.Jobs, ro.Out = tgt, o.Dir, o.Jobs, out
	return Restore(ctx, ro)
}

// VerifyTarget is `mage migrate:verify SOURCE_URL TARGET_URL`.
func VerifyTarget(ctx context.Context, out io.Writer, source, target string) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	src, tgt, err := ResolveURLs([]string{argURL(source), argURL(target)}, o.URLs, true, true)
	if err != nil {
		return err
	}
	vo := o.Verify
	vo.SourceURL, vo.TargetURL, vo.Out = src, tgt, out
	_, err = RunVerify(ctx, vo)
	return err
}

// SmokeTarget is `mage migrate:smoke SOURCE_URL TARGET_URL`.
func SmokeTarget(ctx context.Context, out io.Writer, source, target string) error {
	o, err := readOptions()
	if err != nil {
		return err
	}
	src, tgt, err := ResolveURLs([]string{argURL(source), argURL(target)}, o.URLs, true, true)
	if err != nil {
		return err
	}
	f, err := os.Open(o.Smoke.Endpoints)
	if err != nil {
		return fmt.Errorf("endpoint list: %w (set ZOPS_SMOKE_ENDPOINTS)", err)
	}
	eps, err := ParseEndpoints(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("endpoint list %s: %w", o.Smoke.Endpoints, err)
	}
	so := SmokeOptions{SourceURL: src, TargetURL: tgt, Endpoints: eps, APIBinary: o.Smoke.APIBinary,
		RepoRoot: ".", ReportPath: o.Smoke.Report, RedisAddrs: o.Smoke.RedisAddrs, Out: out}
	if so.ReportPath == "" {
		so.ReportPath = filepath.Join(".state", "migrate", "smoke-"+time.Now().UTC().Format("20060102T150405Z")+".json")
	}
	_, err = Smoke(ctx, so)
	return err
}

// ReadBenchOptions reads bench:verify's options: ZOPS_BENCH_PG_URL (else ZOPS_TEST_PG_URL),
// ZOPS_BENCH_ROWS, ZOPS_BENCH_RUNS, ZOPS_BENCH_KEEP, ZOPS_MIGRATE_PARALLEL.
func ReadBenchOptions(r *opts.Reader) BenchOptions {
	return BenchOptions{
		ServerURL: r.String("ZOPS_BENCH_PG_URL", r.String("ZOPS_TEST_PG_URL", "")),
		Rows:      r.PositiveInt("ZOPS_BENCH_ROWS", 0), Runs: r.PositiveInt("ZOPS_BENCH_RUNS", 0),
		Parallel: r.PositiveInt("ZOPS_MIGRATE_PARALLEL", 0), Keep: r.Bool("ZOPS_BENCH_KEEP", false),
	}
}

// BenchTarget is bench:verify; twinURL is the twin's PostgreSQL ("" when it is not up).
func BenchTarget(ctx context.Context, out io.Writer, twinURL string) error {
	r := opts.New()
	o := ReadBenchOptions(r)
	if err := r.Err(); err != nil {
		return err
	}
	url, err := BenchServerURL(o.ServerURL, twinURL)
	if err != nil {
		return err
	}
	o.ServerURL, o.Out = url, out
	res, err := Bench(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, res.Line())
	return nil
}
