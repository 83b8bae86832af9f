package site

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/benchkit"
	"github.com/shtetl/zmanim-ops/internal/site/nextgen"
	"github.com/shtetl/zmanim-ops/internal/tools"
)

// BenchOptions configure the site benchmark.
type BenchOptions struct {
	// Endpoint is the S3 server (bench:site uses the twin's when it is up); an empty URL
	// starts a throwaway versitygw (Versitygw) on a free loopback port, data in a temp dir.
	Endpoint  awsx.S3Endpoint
	Versitygw string // versitygw binary, used when Endpoint.URL is empty
	AWS       string // aws CLI v2 (default /usr/bin/aws)
	Spec      nextgen.Spec
	// Concurrency of our sync (0: default).
	Concurrency int
	// Runs is how many times the four scenarios run (fresh buckets each time); times are
	// medians over the runs (default 1).
	Runs int
	// CLI, when set, is the command a user types, run as a whole process (start-up,
	// configuration, clients and credentials included) against the same S3 server beside the
	// other two: CLI[0] is the program and CLI[1:] its arguments before the export directory,
	// e.g. a compiled mage binary and "site:sync". CLIEnv is added to its environment
	// (ZOPS_SITE_BUCKET is set by the bench). The program must write to Endpoint: bench:site
	// sets it only when Endpoint is the twin's S3, which site:sync's default environment uses.
	CLI    []string
	CLIEnv []string
	CLIDir string // working directory of CLI (the repository root)
	Out    io.Writer
}

// BenchResult holds the benchmark's figures.
type BenchResult struct {
	Ours, AWS, CLI map[string]time.Duration // medians over the runs, by scenario
	// Ratios (below) are medians of the runs' own ratios.
	OneChangePuts  int
	Files          int
	Bytes          int64
	ColdRatio      float64
	RebuildRatio   float64
	OneChangeRatio float64
	NoChangeRatio  float64
	// CLIRatios are the whole-process command's times over aws s3 sync's, by scenario (nil
	// when the command was not timed).
	CLIRatios map[string]float64
}

// Line is the benchmark's last line; the cli_* ratios are appended when the command a user
// types was timed.
func (r *BenchResult) Line() string {
	f := []benchkit.Field{benchkit.Float("cold_ratio", r.ColdRatio, 3), benchkit.Float("rebuild_ratio", r.RebuildRatio, 3),
		benchkit.Float("onechange_ratio", r.OneChangeRatio, 3), benchkit.Int("onechange_puts", r.OneChangePuts), benchkit.Float("nochange_ratio", r.NoChangeRatio, 3)}
	if r.CLIRatios != nil {
		for _, k := range benchScenarios {
			f = append(f, benchkit.Float("cli_"+k+"_ratio", r.CLIRatios[k], 3))
		}
	}
	return benchkit.Line("site", f...)
}

// benchScenarios in the order they run.
var benchScenarios = []string{"cold", "rebuild", "onechange", "nochange"}

// Bench runs our sync and `aws s3 sync` side by side on the same generated export and the
// same S3 server, each into its own bucket, for four scenarios: cold upload, a rebuild with
// identical content (every file rewritten, new mtimes), one changed hashed chunk plus the
// page referencing it (only those files touched, the old chunk removed), and no change. Our sync runs in-process (the aws CLI's
// own start-up is part of its time) and without CloudFront invalidation, which aws s3 sync
// does not do either.
func Bench(ctx context.Context, o BenchOptions) (*BenchResult, error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.AWS == "" {
		o.AWS = "/usr/bin/aws"
	}
	if o.Spec.Pages == 0 {
		o.Spec = nextgen.Default()
	}
	if _, err := exec.LookPath(o.AWS); err != nil {
		return nil, fmt.Errorf("bench needs the aws CLI v2 as the baseline: %w (apt-get install awscli, or set ZOPS_AWS_CLI)", err)
	}
	tmp, err := os.MkdirTemp(benchTempRoot(), "zops-bench-site-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	ep := o.Endpoint
	if ep.Region == "" {
		ep.Region = "us-east-1"
	}
	if ep.URL == "" {
		stop, started, err := StartVersitygw(ctx, o.Versitygw, filepath.Join(tmp, "s3"), ep.Region)
		if err != nil {
			return nil, err
		}
		defer stop()
		ep = started
		fmt.Fprintf(o.Out, "site: bench: started versitygw at %s (no S3 endpoint given)\n", ep.URL)
	} else {
		fmt.Fprintf(o.Out, "site: bench: S3 server %s\n", ep.URL)
	}
	client := awsx.NewS3(ep)
	suffix := make([]byte, 4)
	rand.Read(suffix)
	awsCfg := filepath.Join(tmp, "aws-config")
	if err := os.WriteFile(awsCfg, []byte("[default]\nregion = "+ep.Region+"\ns3 =\n  addressing_style = path\n"), 0o600); err != nil {
		return nil, err
	}
	dir := filepath.Join(tmp, "out")
	res := &BenchResult{Ours: map[string]time.Duration{}, AWS: map[string]time.Duration{}}
	gen := func(spec nextgen.Spec) error {
		// next build empties its output directory first.
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		ex, err := nextgen.Write(dir, spec)
		if err == nil {
			res.Files, res.Bytes = ex.Files, ex.Bytes
		}
		return err
	}
	runOurs := func(bucket string) (time.Duration, int, error) {
		st := NewS3Store(client, bucket, max(o.Concurrency, DefaultConcurrency), nil)
		t0 := time.Now()
		_, _, err := Sync(ctx, Options{Dir: dir, Store: st, Concurrency: o.Concurrency, Out: io.Discard})
		return time.Since(t0), st.Requests().Get("PutObject"), err
	}
	runAWS := func(bucket string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, o.AWS, "s3", "sync", dir, "s3://"+bucket, "--endpoint-url", ep.URL, "--only-show-errors", "--no-progress")
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+ep.AccessKey, "AWS_SECRET_ACCESS_KEY="+ep.SecretKey,
			"AWS_CONFIG_FILE="+awsCfg, "AWS_DEFAULT_REGION="+ep.Region, "AWS_REGION="+ep.Region, "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		t0 := time.Now()
		err := cmd.Run()
		if err != nil {
			return 0, fmt.Errorf("aws s3 sync: %w: %s", err, stderr.String())
		}
		return time.Since(t0), nil
	}
	// runCLI times the command a user types from exec to exit, as a shell's `time` would.
	runCLI := func(bucket string) (time.Duration, error) {
		args := append(append([]string{}, o.CLI[1:]...), dir)
		cmd := exec.CommandContext(ctx, o.CLI[0], args...)
		cmd.Dir = o.CLIDir
		cmd.Env = append(append(os.Environ(), o.CLIEnv...), "ZOPS_SITE_BUCKET="+bucket)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		t0 := time.Now()
		err := cmd.Run()
		d := time.Since(t0)
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w: %s", filepath.Base(o.CLI[0]), strings.Join(args, " "), err, tail(out.String(), 2000))
		}
		return d, nil
	}
	changed := o.Spec
	changed.Changed, changed.Version = []int{changed.Pages / 2}, "v2"
	prep := map[string]func() error{
		"cold":      func() error { return gen(o.Spec) },
		"rebuild":   func() error { return gen(o.Spec) },
		"onechange": func() error { return applyChange(dir, filepath.Join(tmp, "changed"), changed) },
		"nochange":  func() error { return nil },
	}
	runs := max(o.Runs, 1)
	samples := map[string]map[string][]float64{"ours": {}, "aws": {}, "cli": {}}
	for run := 1; run <= runs; run++ {
		// Fresh buckets every run: each run starts with a cold upload.
		tag := fmt.Sprintf("%s-%d", hex.EncodeToString(suffix), run)
		ours, theirs, cli := "bench-ours-"+tag, "bench-aws-"+tag, "bench-cli-"+tag
		buckets := []string{ours, theirs}
		if len(o.CLI) > 0 {
			buckets = append(buckets, cli)
		}
		for _, b := range buckets {
			if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
				return nil, fmt.Errorf("create bench bucket %s: %w", b, err)
			}
			defer emptyAndDrop(context.WithoutCancel(ctx), client, b)
		}
		for _, name := range benchScenarios {
			if err := prep[name](); err != nil {
				return nil, fmt.Errorf("bench %s: generate export: %w", name, err)
			}
			d, puts, err := runOurs(ours)
			if err != nil {
				return nil, fmt.Errorf("bench %s: our sync: %w", name, err)
			}
			a, err := runAWS(theirs)
			if err != nil {
				return nil, fmt.Errorf("bench %s: %w", name, err)
			}
			samples["ours"][name] = append(samples["ours"][name], d.Seconds())
			samples["aws"][name] = append(samples["aws"][name], a.Seconds())
			if name == "onechange" {
				res.OneChangePuts = puts
			}
			cliText := ""
			if len(o.CLI) > 0 {
				c, err := runCLI(cli)
				if err != nil {
					return nil, fmt.Errorf("bench %s: the command: %w", name, err)
				}
				samples["cli"][name] = append(samples["cli"][name], c.Seconds())
				cliText = fmt.Sprintf("  command %7.3fs ratio %.3f", c.Seconds(), c.Seconds()/a.Seconds())
			}
			fmt.Fprintf(o.Out, "site: run %d %-9s ours %7.3fs (%4d PUTs)  aws s3 sync %7.3fs  ratio %.3f%s   [%d files, %s]\n",
				run, name, d.Seconds(), puts, a.Seconds(), d.Seconds()/a.Seconds(), cliText, res.Files, humanBytes(res.Bytes))
		}
	}
	med := func(side, k string) time.Duration {
		return time.Duration(benchkit.Median(samples[side][k]) * float64(time.Second))
	}
	for _, k := range benchScenarios {
		res.Ours[k], res.AWS[k] = med("ours", k), med("aws", k)
	}
	// A ratio is the median of the runs' ratios: each run's pair shares the machine's
	// state at that moment, which on a busy machine moves both sides alike.
	pairRatio := func(side, k string) float64 {
		var r []float64
		for i, v := range samples[side][k] {
			r = append(r, v/samples["aws"][k][i])
		}
		return benchkit.Median(r)
	}
	if len(o.CLI) > 0 {
		res.CLI, res.CLIRatios = map[string]time.Duration{}, map[string]float64{}
		for _, k := range benchScenarios {
			res.CLI[k] = med("cli", k)
			res.CLIRatios[k] = pairRatio("cli", k)
		}
	}
	ratio := func(k string) float64 { return pairRatio("ours", k) }
	res.ColdRatio, res.RebuildRatio, res.OneChangeRatio, res.NoChangeRatio = ratio("cold"), ratio("rebuild"), ratio("onechange"), ratio("nochange")
	if runs > 1 {
		fmt.Fprintf(o.Out, "site: medians of %d runs (ratios: the median of the runs' ratios)\n", runs)
	}
	for _, k := range benchScenarios {
		cliText := ""
		if res.CLI != nil {
			cliText = fmt.Sprintf("  command %7.3fs ratio %.3f", res.CLI[k].Seconds(), res.CLIRatios[k])
		}
		fmt.Fprintf(o.Out, "site: %-9s ours %7.3fs  aws s3 sync %7.3fs  ratio %.3f%s\n", k, res.Ours[k].Seconds(), res.AWS[k].Seconds(), ratio(k), cliText)
	}
	return res, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// applyChange writes spec into scratch and brings dir to the same content touching only the
// files that differ (the changed chunk, the page referencing it, the removed old chunk), so
// that the one-change scenario measures a one-file change for both tools, as the issue did.
func applyChange(dir, scratch string, spec nextgen.Spec) error {
	if _, err := nextgen.Write(scratch, spec); err != nil {
		return err
	}
	want := map[string]bool{}
	err := filepath.WalkDir(scratch, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(scratch, p)
		want[rel] = true
		nb, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		ob, err := os.ReadFile(filepath.Join(dir, rel))
		if err == nil && bytes.Equal(ob, nb) {
			return nil
		}
		return os.WriteFile(filepath.Join(dir, rel), nb, 0o644)
	})
	if err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !want[rel] {
			return os.Remove(p)
		}
		return nil
	})
}

// benchTempRoot is where the bench writes its exports: a RAM-backed /dev/shm when there is
// one. Each scenario regenerates a ~3,000-file export (next build empties its output first),
// and on ext4 that churn slows every file creation for up to five minutes after (the inode
// allocator steps over recently deleted inodes one by one), which the S3 server then pays
// for the uploads being timed, in proportion to how fast a client is, not how fast the
// server could be.
func benchTempRoot() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if f, err := os.CreateTemp("/dev/shm", "zops-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return "/dev/shm"
		}
	}
	return os.TempDir()
}

func emptyAndDrop(ctx context.Context, c *s3.Client, bucket string) {
	st := NewS3Store(c, bucket, 16, nil)
	if l, err := st.List(ctx); err == nil {
		keys := make([]string, 0, len(l))
		for k := range l {
			keys = append(keys, k)
		}
		st.Delete(ctx, keys)
	}
	c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
}

// FindVersitygw returns the pinned versitygw build (tools.Ensure builds it once per version).
func FindVersitygw(ctx context.Context) (string, error) {
	p, err := tools.Ensure(ctx, "versitygw")
	if err != nil {
		return "", fmt.Errorf("versitygw for the benchmark: %w (or set ZOPS_VERSITYGW, or point ZOPS_S3_ENDPOINT at a running S3 server)", err)
	}
	return p, nil
}

// StartVersitygw starts a throwaway versitygw (posix backend in dataDir) on a free loopback
// port and returns a stop function and its endpoint.
func StartVersitygw(ctx context.Context, bin, dataDir, region string) (func(), awsx.S3Endpoint, error) {
	if bin == "" {
		var err error
		if bin, err = FindVersitygw(ctx); err != nil {
			return nil, awsx.S3Endpoint{}, err
		}
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, awsx.S3Endpoint{}, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, awsx.S3Endpoint{}, err
	}
	addr := l.Addr().String()
	l.Close()
	key := make([]byte, 12)
	rand.Read(key)
	ep := awsx.S3Endpoint{URL: "http://" + addr, AccessKey: "bench", SecretKey: hex.EncodeToString(key), Region: region}
	// The same flags as the twin's versitygw (internal/twin), so both measure the same server.
	cmd := exec.Command(bin, "--access", ep.AccessKey, "--secret", ep.SecretKey, "--port", addr, "--region", region, "--quiet", "posix", dataDir)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, awsx.S3Endpoint{}, fmt.Errorf("start versitygw: %w", err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(ep.URL + "/")
		if err == nil {
			resp.Body.Close()
			return stop, ep, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, awsx.S3Endpoint{}, fmt.Errorf("versitygw did not answer on %s within 10s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PrepareCLI compiles the magefiles of the repository at root once (`go tool mage -compile`,
// the binary `go tool mage` itself builds and runs) so that bench:site can time the command
// as the process a user's `go tool mage site:sync DIR` ends up running. It also measures
// what `go tool mage` adds in front of that process on this machine (median of three
// `-l` listings through each), which the bench reports beside its ratios.
func PrepareCLI(ctx context.Context, root string) (bin string, overhead time.Duration, cleanup func(), err error) {
	tmp, err := os.MkdirTemp("", "zops-bench-cli-")
	if err != nil {
		return "", 0, nil, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	bin = filepath.Join(tmp, "zops-mage")
	run := func(name string, args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = root
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(string(out), 2000))
		}
		return time.Since(t0), nil
	}
	if _, err := run("go", "tool", "mage", "-compile", bin); err != nil {
		cleanup()
		return "", 0, nil, fmt.Errorf("compile the magefiles for the command timing: %w", err)
	}
	var wrapped, direct []float64
	for range 3 {
		w, err := run("go", "tool", "mage", "-l")
		if err != nil {
			cleanup()
			return "", 0, nil, err
		}
		d, err := run(bin, "-l")
		if err != nil {
			cleanup()
			return "", 0, nil, err
		}
		wrapped, direct = append(wrapped, w.Seconds()), append(direct, d.Seconds())
	}
	overhead = time.Duration((benchkit.Median(wrapped) - benchkit.Median(direct)) * float64(time.Second))
	return bin, overhead, cleanup, nil
}
