package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// Options configure `mage loadtest`. FromEnv reads them from ZOPS_LOADTEST_* variables.
type Options struct {
	Scenario string        // smoke | load | ramp | spike | soak (default load)
	Duration time.Duration // replaces the main stage's duration when positive
	Regions  string        // comma-separated region names (default: all in regions.json)
	Target   string        // edge base URL (default: the twin's edge, or https://<domain> in prod)
	Token    string        // bearer token for /api/publisher/* (never printed)
	MintURL  string        // URL that mints a token (POST) when Token is empty
	HotRatio float64       // share of requests from the hot set; < 0 keeps the scenario's
	// Thresholds are extra threshold lines (';'-separated) added to the threshold file.
	Thresholds string
	Label      string // release version or tag, part of the report directory name
	ReportDir  string // default reports/loadtest under the repository root
	MaxWorkers int    // bound on requests in flight (default 1000)
	// MinSamples, when positive, replaces the scenario's minimum of requests per judged
	// region and class; negative turns the minimum off; 0 keeps the scenario's.
	MinSamples int
	// NoTwinHooks leaves the twin edge's latency hooks alone (no region latency).
	NoTwinHooks bool
	// RunnerProfile is the IAM instance profile of the prod runners.
	RunnerProfile string
	Out           io.Writer
}

// ErrThresholds is returned when the run completed but thresholds failed.
var ErrThresholds = errors.New("latency targets missed")

// Execute runs a scenario from the data files against the configured environment, prints
// the report, writes it under reports/loadtest/ and returns ErrThresholds when a threshold
// failed. It is what `go tool mage loadtest` calls.
func Execute(ctx context.Context, env *config.Env, o Options) (*Report, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	sf, err := loadRepoFile(DefaultScenariosFile, LoadScenarioFile)
	if err != nil {
		return nil, err
	}
	rp, err := loadRepoFile(DefaultRegionsFile, LoadRegionProfiles)
	if err != nil {
		return nil, err
	}
	ts, err := loadRepoFile(DefaultThresholdsFile, LoadThresholds)
	if err != nil {
		return nil, err
	}
	sc, err := sf.Scenario(o.Scenario)
	if err != nil {
		return nil, err
	}
	extra, err := ParseThresholds(strings.Join(sc.Thresholds, "\n") + "\n" + o.Thresholds)
	if err != nil {
		return nil, fmt.Errorf("thresholds (scenario %q or ZOPS_LOADTEST_THRESHOLDS): %w", o.Scenario, err)
	}
	if sc.ReplaceThresholds {
		ts = nil
	}
	ts = append(ts, extra...)
	regions, err := rp.Select(o.Regions)
	if err != nil {
		return nil, fmt.Errorf("ZOPS_LOADTEST_REGIONS: %w", err)
	}
	for _, t := range ts {
		if t.Region != "*" {
			if _, err := rp.Lookup(t.Region); err != nil {
				return nil, fmt.Errorf("threshold %q: %w", t.Text, err)
			}
		}
	}
	stages, err := sf.Stages(o.Scenario, Load{float64(env.Load.ExpectedRPS), float64(env.Load.Multiplier)}, o.Duration)
	if err != nil {
		return nil, err
	}
	target := o.Target
	if target == "" {
		if env.IsTwin() {
			target = env.URL(env.Twin.Ports.Edge)
		} else {
			target = "https://" + env.Domain
		}
	}
	token := o.Token
	if token == "" && o.MintURL != "" {
		if token, err = MintToken(ctx, o.MintURL); err != nil {
			return nil, err
		}
	}
	if token == "" && env.IsTwin() && o.Target == "" {
		// The twin's Clerk stand-in mints user tokens; without it, private calls are left out.
		mint := env.URL(env.Twin.Ports.JWT) + "/mint?kind=user&sub=loadtest"
		if t, err := MintToken(ctx, mint); err == nil {
			token = t
		} else {
			fmt.Fprintf(o.Out, "loadtest: no token for private calls: %v\n", err)
		}
	}
	var names []string
	for _, r := range regions {
		names = append(names, r.Name)
	}
	hot := o.HotRatio
	if hot < 0 && sc.HotRatio != nil {
		hot = *sc.HotRatio
	}
	// A new salt per run: the keys meant to miss the caches must not be the last run's, which
	// the edge still holds (see MixOptions.Salt).
	salt := uint64(time.Now().UnixNano())
	mix, err := NewMix(sf.Mix, MixOptions{Target: target, Regions: names, RegionHeader: env.IsTwin(), Token: token, HotRatio: hot, Salt: salt})
	if err != nil {
		return nil, err
	}
	var window time.Duration
	if sc.Window != "" {
		window, _ = time.ParseDuration(sc.Window) // validated when the file was loaded
	}
	var skipped []string
	for _, s := range mix.Skipped {
		skipped = append(skipped, s+" (no token: set ZOPS_LOADTEST_TOKEN or ZOPS_LOADTEST_MINT_URL)")
	}
	plan := Plan{Name: o.Scenario, Target: target, Regions: names, Stages: stages, Source: mix,
		Window: window, MaxWorkers: o.MaxWorkers, Progress: progressPrinter(o.Out)}
	var total time.Duration
	for _, s := range stages {
		total += s.Duration
	}
	fmt.Fprintf(o.Out, "loadtest: scenario %s against %s from %s, %d stages, %s (expected load %d req/s x %d)\n",
		o.Scenario, target, strings.Join(names, ", "), len(stages), total, env.Load.ExpectedRPS, env.Load.Multiplier)
	for _, s := range skipped {
		fmt.Fprintf(o.Out, "loadtest: not in the mix: %s\n", s)
	}

	if err := CheckReachable(ctx, target); err != nil {
		return nil, err
	}
	if err := CheckPages(ctx, &http.Client{Timeout: 10 * time.Second}, target, sf.Mix.Endpoints); err != nil {
		return nil, err
	}
	var res *Result
	switch {
	case env.IsTwin() && o.Target == "" && !o.NoTwinHooks:
		restore, err := EnableTwinLatency(ctx, env.URL(env.Twin.Ports.Control), regions)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Out, "loadtest: twin edge latency hooks on (%s)\n", DefaultRegionsFile)
		res, err = Run(ctx, plan)
		if rerr := restore(); rerr != nil {
			fmt.Fprintf(o.Out, "loadtest: could not restore the twin's latency hooks: %v\n", rerr)
		}
		if err != nil {
			return nil, err
		}
	case env.IsTwin() || o.Target != "":
		if res, err = Run(ctx, plan); err != nil {
			return nil, err
		}
	default:
		if res, err = runProd(ctx, env, o, sf, stages, target, regions, hot, window, salt); err != nil {
			return nil, err
		}
	}

	minSamples := sc.MinSamples
	switch {
	case o.MinSamples > 0:
		minSamples = o.MinSamples
	case o.MinSamples < 0:
		minSamples = 0
	}
	report := &Report{Scenario: o.Scenario, Label: o.Label, Result: res, Outcomes: EvaluateMin(res, ts, uint64(minSamples), sc.Evaluate...),
		Judged: sc.Evaluate, Skipped: skipped, MinSamples: uint64(minSamples)}
	root := o.ReportDir
	if root == "" {
		root = filepath.Join(config.RepoRoot(), DefaultReportDir)
	}
	name := ReportDirName(res.Started, o.Scenario, o.Label)
	report.Previous, report.PreviousDir, err = FindPrevious(root, o.Scenario, name)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, name)
	if err := report.Write(dir); err != nil {
		return nil, err
	}
	if err := report.Markdown(o.Out); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "\nloadtest: report written to %s (report.md, report.html, result.json)\n", dir)
	if !report.Passed() {
		return report, fmt.Errorf("loadtest %s: %w: see %s", o.Scenario, ErrThresholds, filepath.Join(dir, "report.md"))
	}
	return report, nil
}

// runProd starts one runner per region (see remote.go), aligned on a common start.
func runProd(ctx context.Context, env *config.Env, o Options, sf *ScenarioFile, stages []Stage, target string, regions []RegionProfile, hot float64, window time.Duration, salt uint64) (*Result, error) {
	fmt.Fprintf(o.Out, "loadtest: building the linux/arm64 runner\n")
	bin, err := BuildRunner(ctx)
	if err != nil {
		return nil, err
	}
	clients, err := NewAWSClients(ctx, env.Region, env.Buckets.Releases, "")
	if err != nil {
		return nil, err
	}
	rem := &Remote{Fleet: clients, Commander: clients, Store: clients, HomeRegion: env.Region, Log: o.Out,
		Instance: RunnerInstance{InstanceProfile: o.RunnerProfile}}
	start := time.Now().Add(5 * time.Minute).UTC() // time for every runner to boot and register with SSM
	var specs []RunSpec
	for i, r := range regions {
		specs = append(specs, RunSpec{Scenario: o.Scenario, Target: target, Region: r.Name, Stages: splitStages(stages, len(regions)),
			Mix: sf.Mix, HotRatio: hot, TokenParameter: env.SSM("loadtest-token"), Window: window, MaxWorkers: o.MaxWorkers, StartAt: start,
			RegionIndex: i, RegionCount: len(regions), Salt: salt})
	}
	return rem.RunRemote(ctx, start.Format("20060102T150405Z")+"-"+o.Scenario, bin, specs)
}

// splitStages divides the rates among n runners, so that together they send the planned load.
func splitStages(st []Stage, n int) []Stage {
	out := make([]Stage, len(st))
	for i, s := range st {
		s.StartRate /= float64(n)
		s.EndRate /= float64(n)
		out[i] = s
	}
	return out
}

// BuildRunner cross-compiles cmd/zops-loadgen for the linux/arm64 runners.
func BuildRunner(ctx context.Context) ([]byte, error) {
	dir, err := os.MkdirTemp("", "zops-loadgen-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "zops-loadgen")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/zops-loadgen")
	cmd.Dir = config.RepoRoot()
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build runner: %w: %s", err, b)
	}
	return os.ReadFile(out)
}

func loadRepoFile[T any](rel string, load func(string) (T, error)) (T, error) {
	var zero T
	p, err := RepoPath(rel)
	if err != nil {
		return zero, err
	}
	return load(p)
}

func progressPrinter(w io.Writer) func(Progress) {
	return func(p Progress) {
		if s := p.Elapsed.Round(time.Second); s%(5*time.Second) != 0 {
			return
		}
		fmt.Fprintf(w, "loadtest: [%4s] %-9s scheduled %d, completed %d, failed %d, dropped %d, in flight %d\n",
			p.Elapsed.Round(time.Second), p.Stage, p.Scheduled, p.Completed, p.Failed, p.Dropped, p.InFlight)
	}
}

// MintToken asks a token minting endpoint (the twin's JWT issuer) for a bearer token with a
// POST. The body may be JSON with a "token", "access_token" or "jwt" field, or the token as
// plain text. The token is never printed.
func MintToken(ctx context.Context, mintURL string) (string, error) {
	body := []byte(`{"sub":"loadtest","scope":"publisher"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, mintURL, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("mint token: ZOPS_LOADTEST_MINT_URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("mint token at %s: %w (is the twin's JWT issuer up?)", mintURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("mint token: read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("mint token at %s: status %d", mintURL, resp.StatusCode)
	}
	var m map[string]any
	if json.Unmarshal(b, &m) == nil {
		for _, k := range []string{"token", "access_token", "jwt"} {
			if s, ok := m[k].(string); ok && s != "" {
				return s, nil
			}
		}
		return "", fmt.Errorf("mint token at %s: JSON answer has no token, access_token or jwt field", mintURL)
	}
	tok := strings.TrimSpace(string(b))
	if strings.Count(tok, ".") != 2 {
		return "", fmt.Errorf("mint token at %s: answer is neither JSON nor a JWT", mintURL)
	}
	return tok, nil
}
