package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// migrate:smoke, one job per file: this file runs the comparison (Smoke); smoke_endpoints.go
// parses the endpoint list, smoke_api.go starts the API processes, smoke_redis.go their
// throwaway Redis servers, smoke_issuer.go the throwaway token issuer (internal/jwtissuer), and
// smoke_compare.go calls an endpoint and compares the two answers.

// ErrSmokeDifferent is returned when an endpoint answered differently from the two databases.
var ErrSmokeDifferent = errors.New("API answers differ between source and target database")

// SmokeOptions configures Smoke.
type SmokeOptions struct {
	SourceURL, TargetURL string
	Endpoints            []Endpoint
	// APIBinary is a built examples/zmanim-api (or the real API with the same environment
	// contract); "" builds examples/zmanim-api from the repository at RepoRoot.
	APIBinary string
	RepoRoot  string
	// RedisAddrs are two Redis servers, one per API so caches cannot leak answers from one
	// database into the other; empty starts two throwaway redis-server processes.
	RedisAddrs []string
	ReportPath string
	Out        io.Writer
}

// SmokeResult is one endpoint's comparison.
type SmokeResult struct {
	Endpoint     string `json:"endpoint"`
	SourceStatus int    `json:"source_status"`
	TargetStatus int    `json:"target_status"`
	Same         bool   `json:"same"`
	Difference   string `json:"difference,omitempty"`
}

// Smoke starts the API twice, on the source and on the target database, calls every endpoint
// on both and compares status codes and JSON-normalized bodies.
func Smoke(ctx context.Context, o SmokeOptions) ([]SmokeResult, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	work, err := os.MkdirTemp("", "zops-smoke-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	bin := o.APIBinary
	if bin == "" {
		bin = filepath.Join(work, "zmanim-api")
		fmt.Fprintf(o.Out, "smoke: building examples/zmanim-api\n")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/zmanim-api")
		cmd.Dir = o.RepoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build examples/zmanim-api: %w\n%s", err, out)
		}
	}
	redisAddrs := o.RedisAddrs
	if len(redisAddrs) == 0 {
		for i := 0; i < 2; i++ {
			addr, stop, err := startRedis(ctx, filepath.Join(work, fmt.Sprintf("redis%d", i)))
			if err != nil {
				return nil, err
			}
			defer stop()
			redisAddrs = append(redisAddrs, addr)
		}
	}
	if len(redisAddrs) != 2 || redisAddrs[0] == redisAddrs[1] {
		return nil, errors.New("smoke needs two different Redis servers (ZOPS_SMOKE_REDIS_ADDRS=host:port,host:port), one per API, so one cache cannot answer for the other database")
	}

	iss, stopJWKS, err := startIssuer()
	if err != nil {
		return nil, err
	}
	defer stopJWKS()

	secret := randomHex(16)
	var apis [2]*apiProc
	for i, db := range []string{o.SourceURL, o.TargetURL} {
		name := []string{"source", "target"}[i]
		p, err := startAPI(ctx, bin, name, db, redisAddrs[i], iss, secret)
		if err != nil {
			for _, a := range apis {
				if a != nil {
					a.stop()
				}
			}
			return nil, err
		}
		apis[i] = p
		defer p.stop()
		fmt.Fprintf(o.Out, "smoke: API on the %s database listening on %s\n", name, p.addr)
	}

	client := &http.Client{Timeout: 30 * time.Second}
	var results []SmokeResult
	differ := 0
	for _, e := range o.Endpoints {
		var resp [2]response
		var errs [2]error
		var wg sync.WaitGroup
		for i := range apis {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp[i], errs[i] = call(ctx, client, apis[i].addr, e, iss, secret)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs[0], errs[1]); err != nil {
			return results, fmt.Errorf("call %s: %w", e, err)
		}
		r := SmokeResult{Endpoint: e.String(), SourceStatus: resp[0].status, TargetStatus: resp[1].status}
		r.Difference = compareResponses(resp[0], resp[1])
		r.Same = r.Difference == ""
		mark := "same"
		if !r.Same {
			differ++
			mark = "DIFF"
		}
		fmt.Fprintf(o.Out, "smoke: %-4s %d %d %s", mark, r.SourceStatus, r.TargetStatus, e)
		if r.Difference != "" {
			fmt.Fprintf(o.Out, ": %s", r.Difference)
		}
		fmt.Fprintln(o.Out)
		results = append(results, r)
	}
	if o.ReportPath != "" {
		if err := os.MkdirAll(filepath.Dir(o.ReportPath), 0o755); err != nil {
			return results, err
		}
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(o.ReportPath, append(b, '\n'), 0o644); err != nil {
			return results, fmt.Errorf("write smoke report: %w", err)
		}
		fmt.Fprintf(o.Out, "smoke: report %s\n", o.ReportPath)
	}
	fmt.Fprintf(o.Out, "smoke: %d endpoints, %d differ\n", len(results), differ)
	if differ > 0 {
		return results, fmt.Errorf("%w: %d of %d endpoints", ErrSmokeDifferent, differ, len(results))
	}
	return results, nil
}
