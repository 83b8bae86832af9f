package stacks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

// noAWS points the default credential chain at nothing: no env keys, empty files, no IMDS.
func noAWS(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// infra:diff and infra:deploy refuse clearly, before synthesizing anything, without credentials
// or with a region other than the configured one.
func TestDeployRefusesWithoutCredentials(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		target func(context.Context, *strings.Builder) error
		want   string
		is     error
	}{
		{"deploy without credentials", nil, func(c context.Context, w *strings.Builder) error { return DeployTarget(c, w) }, "configure a profile", ErrNoCredentials},
		{"diff without credentials", nil, func(c context.Context, w *strings.Builder) error { return DiffTarget(c, w) }, "nothing was changed", ErrNoCredentials},
		{"deploy to another region", map[string]string{"AWS_REGION": "us-west-2", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x"},
			func(c context.Context, w *strings.Builder) error { return DeployTarget(c, w) }, "set AWS_REGION=eu-west-1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			noAWS(t)
			t.Setenv("ZOPS_ENV", "prod")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out strings.Builder
			start := time.Now()
			err := tc.target(context.Background(), &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(out.String(), "synth:") || time.Since(start) > 10*time.Second {
				t.Errorf("refusal came after synthesizing (%s): %s", time.Since(start), out.String())
			}
		})
	}
}

func TestSplitFields(t *testing.T) {
	if got := strings.Join(splitFields(" zmanim-prod-edge,zmanim-prod-dns  x "), "|"); got != "zmanim-prod-edge|zmanim-prod-dns|x" {
		t.Errorf("got %s", got)
	}
}

// Real AWS: deploys every stack with the pinned CDK CLI and checks the outputs and /health.
// Runs only with ZOPS_AWS_ACCEPTANCE=1 and credentials for the account of ZOPS_ENV (prod by
// default; point ZOPS_CONFIG at a staging environment to rehearse).
func TestDeployAcceptance(t *testing.T) {
	if os.Getenv("ZOPS_AWS_ACCEPTANCE") != "1" {
		t.Skip("set ZOPS_AWS_ACCEPTANCE=1 with AWS credentials to deploy for real")
	}
	t.Setenv("ZOPS_DEPLOY_APPROVE", "1")
	if os.Getenv("ZOPS_ENV") == "" {
		t.Setenv("ZOPS_ENV", "prod")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	var out strings.Builder
	if err := DeployTarget(ctx, &out); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	a := ReadOptions(opts.New()).app(nil)
	b, err := os.ReadFile(filepath.Join(a.OutDir, "outputs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var outputs map[string]map[string]string
	if err := json.Unmarshal(b, &outputs); err != nil {
		t.Fatal(err)
	}
	env, err := config.LoadWith(config.Options{Env: a.Env, Root: a.Root})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ stack, key string }{
		{"zmanim-" + env.Name + "-edge", "DistributionId"}, {"zmanim-" + env.Name + "-edge", "ApiEndpoint"},
		{"zmanim-" + env.Name + "-compute", "InstanceId"}, {"zmanim-" + env.Name + "-github-oidc", "ReleaseRoleArn"}, {"zmanim-" + env.Name + "-github-oidc", "InfraRoleArn"},
	} {
		if outputs[want.stack][want.key] == "" {
			t.Errorf("output %s.%s missing: %v", want.stack, want.key, outputs[want.stack])
		}
	}
	deadline := time.Now().Add(15 * time.Minute)
	for {
		resp, err := http.Get("https://" + env.Domain + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("https://%s/health not healthy after 15 minutes (last: %v)", env.Domain, err)
		}
		time.Sleep(20 * time.Second)
	}
}
