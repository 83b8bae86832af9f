package stacks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/tools"
)

// ErrNoCredentials is returned when no AWS credentials are configured for diff or deploy.
var ErrNoCredentials = errors.New("no AWS credentials")

// CheckCredentials refuses early and clearly when the default AWS credential chain is empty,
// and when the configured region differs from AWS_REGION.
func CheckCredentials(ctx context.Context, env *config.Env) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoCredentials, err)
	}
	if cfg.Region != "" && cfg.Region != env.Region {
		return fmt.Errorf("your AWS setup points at %s but environment %q lives in %s: set AWS_REGION=%s", cfg.Region, env.Name, env.Region, env.Region)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return fmt.Errorf("%w for environment %q: configure a profile (AWS_PROFILE), SSO (aws sso login) or, in GitHub Actions, the OIDC role (aws-actions/configure-aws-credentials); nothing was changed", ErrNoCredentials, env.Name)
	}
	return nil
}

// CDK is the AWS CDK CLI pinned by infra/package.json and infra/package-lock.json, installed
// with `npm ci` once per lock file into the tool cache (never into the repository).
type CDK struct {
	Root   string
	Stdout io.Writer
	Stderr io.Writer
}

// Path installs the pinned CLI if needed and returns the cdk executable.
func (c CDK) Path(ctx context.Context) (string, error) {
	infraDir := filepath.Join(c.Root, "infra")
	lock, err := os.ReadFile(filepath.Join(infraDir, "package-lock.json"))
	if err != nil {
		return "", fmt.Errorf("cdk cli: %w", err)
	}
	sum := sha256.Sum256(lock)
	dir := filepath.Join(tools.CacheDir(), "cdk-cli", hex.EncodeToString(sum[:8]))
	bin := filepath.Join(dir, "node_modules", ".bin", "cdk")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", fmt.Errorf("cdk cli: npm not found: install Node.js 20+ (the CDK CLI is pinned in infra/package.json)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cdk cli: %w", err)
	}
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(infraDir, f))
		if err != nil {
			return "", fmt.Errorf("cdk cli: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return "", fmt.Errorf("cdk cli: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = c.Stderr, c.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cdk cli: npm ci in %s: %w", dir, err)
	}
	return bin, nil
}

// Run runs the pinned cdk with args against a synthesized assembly (--app DIR), so the CLI
// never re-synthesizes what was checked.
func (c CDK) Run(ctx context.Context, assembly string, args ...string) error {
	bin, err := c.Path(ctx)
	if err != nil {
		return err
	}
	full := append([]string{}, args...)
	full = append(full, "--app", assembly, "--no-notices", "--no-version-reporting")
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Dir = filepath.Join(c.Root, "infra")
	cmd.Env = append(appEnv(), "CDK_DISABLE_CLI_TELEMETRY=true")
	cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("cdk %s: exit %d", args[0], ee.ExitCode())
		}
		return fmt.Errorf("cdk %s: %w", args[0], err)
	}
	return nil
}
