package stacks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/pricing"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/stacks/cost"
)

// priceRoot is a repository root holding only a copy of the newest price table.
func priceRoot(t *testing.T) (root, dir string) {
	t.Helper()
	src, err := cost.LatestPrices(filepath.Join(config.RepoRoot(), "infra", "prices"), "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	root = t.TempDir()
	dir = filepath.Join(root, "infra", "prices")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return root, dir
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, _ := os.ReadDir(dir)
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// infra:prices without credentials refuses and writes nothing.
func TestPricesRefusesWithoutCredentials(t *testing.T) {
	noAWS(t)
	root, dir := priceRoot(t)
	before := listDir(t, dir)
	var out strings.Builder
	_, err := RefreshPrices(context.Background(), &out, PricesOptions{Root: root, Today: "2099-01-01"})
	if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "Nothing was changed") {
		t.Fatalf("err = %v", err)
	}
	if after := listDir(t, dir); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("files changed: %v -> %v", before, after)
	}
}

// With a price list (here one that serves nothing), infra:prices records a new dated table in
// which every value kept its recorded source.
func TestPricesWritesANewDatedTable(t *testing.T) {
	root, dir := priceRoot(t)
	var out strings.Builder
	path, err := RefreshPrices(context.Background(), &out, PricesOptions{Root: root, Today: "2099-01-01", Client: emptyPriceList{}})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "eu-west-1-2099-01-01.json" || len(listDir(t, dir)) != 2 {
		t.Fatalf("wrote %s; dir %v", path, listDir(t, dir))
	}
	p, err := cost.LoadPrices(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Recorded != "2099-01-01" || p.Values[cost.InstanceKey("m7g.medium")].Value != 0.0455 {
		t.Errorf("table %+v", p.Values[cost.InstanceKey("m7g.medium")])
	}
	if !strings.Contains(out.String(), "kept     ec2.m7g.medium.hour") || !strings.Contains(out.String(), "prices: wrote ") {
		t.Errorf("output:\n%s", out.String())
	}
}

type emptyPriceList struct{}

func (emptyPriceList) GetProducts(context.Context, *pricing.GetProductsInput, ...func(*pricing.Options)) (*pricing.GetProductsOutput, error) {
	return &pricing.GetProductsOutput{}, nil
}

// TestPricesAcceptance calls the real Price List Query API: only with ZOPS_AWS_ACCEPTANCE=1 and
// credentials allowed pricing:GetProducts. The on-demand m7g.medium price in eu-west-1 must
// come back from the API with its SKU as source.
func TestPricesAcceptance(t *testing.T) {
	if os.Getenv("ZOPS_AWS_ACCEPTANCE") != "1" {
		t.Skip("set ZOPS_AWS_ACCEPTANCE=1 (with AWS credentials allowed pricing:GetProducts) to call the real Price List Query API")
	}
	root, _ := priceRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out strings.Builder
	path, err := RefreshPrices(ctx, &out, PricesOptions{Root: root})
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := cost.LoadPrices(path)
	if err != nil {
		t.Fatal(err)
	}
	v := p.Values[cost.InstanceKey("m7g.medium")]
	if v.Value <= 0 || !strings.Contains(v.Source, "pricing:GetProducts") || !strings.Contains(v.Source, "SKU ") {
		t.Errorf("m7g.medium: %+v", v)
	}
}
