package pricelist

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/pricing/types"

	"github.com/shtetl/zmanim-ops/internal/stacks/cost"
)

// fakePriceList answers GetProducts from documents keyed by service and filters. No local
// emulator implements the Price List Query API, so the refresh is tested over the recorded
// response shape (testdata/getproducts-ec2-m7g-medium.json, format aws_v1) and documents
// built in that shape; TestRefreshAcceptance calls the real API with ZOPS_AWS_ACCEPTANCE=1.
type fakePriceList struct {
	docs  map[string][]string // "service|field=value,..." (sorted) -> documents
	pages int                 // documents per page (pagination)
	calls []string
}

func (f *fakePriceList) GetProducts(_ context.Context, in *pricing.GetProductsInput, _ ...func(*pricing.Options)) (*pricing.GetProductsOutput, error) {
	var fs []string
	for _, flt := range in.Filters {
		if flt.Type != types.FilterTypeTermMatch {
			return nil, fmt.Errorf("filter type %s", flt.Type)
		}
		fs = append(fs, *flt.Field+"="+*flt.Value)
	}
	sort.Strings(fs)
	key := *in.ServiceCode + "|" + strings.Join(fs, ",")
	f.calls = append(f.calls, key)
	docs := f.docs[key]
	start := 0
	if in.NextToken != nil {
		fmt.Sscanf(*in.NextToken, "%d", &start)
	}
	end := len(docs)
	out := &pricing.GetProductsOutput{FormatVersion: aws.String("aws_v1")}
	if f.pages > 0 && start+f.pages < end {
		end = start + f.pages
		out.NextToken = aws.String(fmt.Sprint(end))
	}
	out.PriceList = docs[start:end]
	return out, nil
}

// doc builds a price list document in the recorded shape with one on-demand dimension per tier.
func doc(sku, unit string, tiers ...[2]string) string {
	var dims []string
	for i, t := range tiers {
		dims = append(dims, fmt.Sprintf(`"%s.JRTCKXETXF.%d":{"unit":%q,"endRange":"Inf","description":"test tier %d","appliesTo":[],"rateCode":"x","beginRange":%q,"pricePerUnit":{"USD":%q}}`, sku, i, unit, i, t[0], t[1]))
	}
	return fmt.Sprintf(`{"product":{"productFamily":"x","attributes":{},"sku":%q},"serviceCode":"x","terms":{"OnDemand":{"%s.JRTCKXETXF":{"priceDimensions":{%s},"sku":%q,"effectiveDate":"2026-11-01T00:00:00Z","offerTermCode":"JRTCKXETXF","termAttributes":{}}}},"version":"20261101000000","publicationDate":"2026-11-01T00:00:00Z"}`,
		sku, sku, strings.Join(dims, ","), sku)
}

func TestRefreshParsesThePriceList(t *testing.T) {
	recorded, err := os.ReadFile("testdata/getproducts-ec2-m7g-medium.json")
	if err != nil {
		t.Fatal(err)
	}
	old := testPrices()
	old.Currency = "USD"
	pl := &fakePriceList{pages: 1, docs: map[string][]string{
		// the instance: an unrelated product page first, so the answer spans two pages
		"AmazonEC2|capacitystatus=Used,instanceType=m7g.medium,licenseModel=No License required,operatingSystem=Linux,preInstalledSw=NA,regionCode=eu-west-1,tenancy=Shared": {
			doc("NOTIER0", "Hrs", [2]string{"100", "0.01"}), string(recorded)},
		// S3 PUT: listed per request, recorded per 1,000
		"AmazonS3|group=S3-API-Tier1,regionCode=eu-west-1": {doc("S3PUT", "Requests", [2]string{"0", "0.0000050000"})},
		// CloudFront: tiered; the first tier is the one recorded
		"AmazonCloudFront|usagetype=EU-Requests-Tier2-HTTPS": {doc("CFHTTPS", "Requests", [2]string{"0", "0.0000012000"}, [2]string{"10000000000", "0.0000010000"})},
		// gp3: two products with different prices is ambiguous, so the old value stays
		"AmazonEC2|productFamily=Storage,regionCode=eu-west-1,volumeApiName=gp3": {doc("GP3A", "GB-Mo", [2]string{"0", "0.088"}), doc("GP3B", "GB-Mo", [2]string{"0", "0.1"})},
	}}
	nw, rs, err := Refresh(context.Background(), pl, old, "2026-12-01")
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]Refreshed{}
	for _, r := range rs {
		byKey[r.Key] = r
	}
	for key, want := range map[string]float64{cost.InstanceKey("m7g.medium"): 0.0455, cost.KeyS3PutPer1k: 0.005, cost.KeyCFHTTPSPer10k: 0.012} {
		if got := nw.Values[key].Value; abs(got-want) > 1e-12 || byKey[key].Kept != "" {
			t.Errorf("%s = %v (kept %q), want %v", key, got, byKey[key].Kept, want)
		}
		if src := nw.Values[key].Source; !strings.HasPrefix(src, "AWS Price List Query API (pricing:GetProducts, us-east-1 endpoint)") || nw.Values[key].Read != "2026-12-01" {
			t.Errorf("%s source %q read %s", key, src, nw.Values[key].Read)
		}
	}
	if src := nw.Values[cost.InstanceKey("m7g.medium")].Source; !strings.Contains(src, "SKU RECORDEDSKU1234") || !strings.Contains(src, "offer version 20261001000000") || !strings.Contains(src, "$0.0455 per On Demand Linux m7g.medium Instance Hour per Hrs") {
		t.Errorf("instance source %q", src)
	}
	if r := byKey[cost.VolumeKey("gp3")]; !strings.Contains(r.Kept, "2 different prices") || nw.Values[cost.VolumeKey("gp3")] != old.Values[cost.VolumeKey("gp3")] {
		t.Errorf("ambiguous gp3: %+v", r)
	}
	if r := byKey[cost.KeyEBSSnapshot]; !strings.Contains(r.Kept, "no on-demand price of tier 0 matched AmazonEC2 regionCode=eu-west-1,usagetype=EU-EBS:SnapshotUsage") {
		t.Errorf("unmatched snapshot: %+v", r)
	}
	// Keys the price list does not serve are never queried and keep their source.
	for _, k := range []string{cost.SavingsPlanKey("m7g.medium"), cost.KeyCFFreeRequests, cost.KeyHealthCheckFeature} {
		if _, queried := byKey[k]; queried || nw.Values[k] != old.Values[k] {
			t.Errorf("%s was touched", k)
		}
	}
	if nw.Recorded != "2026-12-01" || len(nw.Values) != len(old.Values) {
		t.Errorf("recorded %s, %d values (old %d)", nw.Recorded, len(nw.Values), len(old.Values))
	}
	if err := nw.Check(); err != nil {
		t.Error(err)
	}

	// Written as a new dated file that loads back; a second write the same day is refused.
	dir := t.TempDir()
	path, err := cost.WritePrices(dir, nw)
	if err != nil || filepath.Base(path) != "eu-west-1-2026-12-01.json" {
		t.Fatalf("write: %s %v", path, err)
	}
	back, err := cost.LoadPrices(path)
	if err != nil || back.Values[cost.InstanceKey("m7g.medium")].Value != 0.0455 {
		t.Fatalf("load back: %v", err)
	}
	if _, err := cost.WritePrices(dir, nw); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second write: %v", err)
	}
	var b strings.Builder
	WriteRefresh(&b, rs)
	if !strings.Contains(b.String(), "changed  "+cost.KeyCFHTTPSPer10k) || !strings.HasPrefix(lastLine(b.String()), "prices: queried=") {
		t.Errorf("report:\n%s", b.String())
	}
}

func TestRefreshErrors(t *testing.T) {
	old := testPrices()
	old.Region = "mars-north-1"
	if _, _, err := Refresh(context.Background(), &fakePriceList{}, old, "2026-12-01"); err == nil || !strings.Contains(err.Error(), "no price list location known for mars-north-1") {
		t.Errorf("unknown region: %v", err)
	}
	old = testPrices()
	boom := errors.New("AccessDeniedException")
	if _, _, err := Refresh(context.Background(), errPriceList{boom}, old, "2026-12-01"); !errors.Is(err, boom) || !strings.Contains(err.Error(), "pricing:GetProducts") {
		t.Errorf("API error: %v", err)
	}
}

type errPriceList struct{ err error }

func (e errPriceList) GetProducts(context.Context, *pricing.GetProductsInput, ...func(*pricing.Options)) (*pricing.GetProductsOutput, error) {
	return nil, e.err
}

// testPrices is a small table in the repository's format.
func testPrices() *cost.Prices {
	p := &cost.Prices{Region: "eu-west-1", Currency: "USD", Recorded: "2026-11-30", File: "test", Values: map[string]cost.Price{}}
	for k, x := range map[string]float64{cost.KeyHoursPerMonth: 730, cost.InstanceKey("m7g.medium"): 0.04, cost.SavingsPlanKey("m7g.medium"): 0.03,
		cost.VolumeKey("gp3"): 0.1, cost.KeyEBSSnapshot: 0.05, cost.KeyS3PutPer1k: 0.004, cost.KeyCFHTTPSPer10k: 0.01,
		cost.KeyCFFreeRequests: 1e7, cost.KeyHealthCheckFeature: 2} {
		p.Values[k] = cost.Price{Value: x, Unit: "test unit", Source: "test", Read: "2026-11-30"}
	}
	return p
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}
