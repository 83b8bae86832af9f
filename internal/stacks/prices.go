package stacks

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/pricing"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/stacks/cost"
	"github.com/shtetl/zmanim-ops/internal/stacks/cost/pricelist"
)

// PricesOptions configure infra:prices.
type PricesOptions struct {
	Root string // repository root; default config.RepoRoot()
	Env  string // environment whose region is priced; default prod
	// Base is the table refreshed (default the newest infra/prices/<region>-*.json): it decides
	// which keys exist and keeps what the price list does not serve.
	Base string
	// Today dates the new file (default the UTC date now).
	Today string
	// Client is the Price List Query API; nil means the real one, after a credentials check.
	Client pricelist.PriceList
}

// RefreshPrices is infra:prices: query the AWS Price List Query API for every on-demand value
// of the newest price table and record the result as a new dated table. Without AWS
// credentials it refuses before anything is written.
func RefreshPrices(ctx context.Context, w io.Writer, o PricesOptions) (string, error) {
	if o.Root == "" {
		o.Root = config.RepoRoot()
	}
	if o.Env == "" || o.Env == "local" {
		o.Env = "prod" // the twin has no AWS prices
	}
	env, err := config.LoadWith(config.Options{Env: o.Env, Root: o.Root})
	if err != nil {
		return "", err
	}
	dir := filepath.Join(o.Root, "infra", "prices")
	if o.Base == "" {
		if o.Base, err = cost.LatestPrices(dir, env.Region); err != nil {
			return "", err
		}
	}
	base, err := cost.LoadPrices(o.Base)
	if err != nil {
		return "", err
	}
	if o.Client == nil {
		if o.Client, err = pricingClient(ctx); err != nil {
			return "", err
		}
	}
	if o.Today == "" {
		o.Today = time.Now().UTC().Format("2006-01-02")
	}
	fmt.Fprintf(w, "prices: refreshing %s (%d values) from the AWS Price List Query API (%s)\n", o.Base, len(base.Values), pricelist.PricingRegion)
	nw, rs, err := pricelist.Refresh(ctx, o.Client, base, o.Today)
	if err != nil {
		return "", err
	}
	pricelist.WriteRefresh(w, rs)
	path, err := cost.WritePrices(dir, nw)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(w, "prices: wrote %s; infra:cost uses it from now on\n", path)
	return path, nil
}

// pricingClient is the Price List Query API client, refusing when the default credential
// chain is empty: nothing has been written at that point.
func pricingClient(ctx context.Context) (pricelist.PriceList, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(cctx, awsconfig.WithRegion(pricelist.PricingRegion))
	if err != nil {
		return nil, fmt.Errorf("%w: %v; nothing was changed", ErrNoCredentials, err)
	}
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		return nil, fmt.Errorf("%w to call pricing:GetProducts: configure a profile (AWS_PROFILE), SSO (aws sso login) or, in GitHub Actions, the OIDC role; the caller needs pricing:GetProducts. Nothing was changed", ErrNoCredentials)
	}
	return pricing.NewFromConfig(cfg), nil
}
