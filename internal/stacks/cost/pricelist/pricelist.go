// Package pricelist refreshes a price table (internal/stacks/cost) from the AWS Price List
// Query API. It lives apart from cost so the CDK app, which prices templates through cost,
// does not link the Pricing SDK.
package pricelist

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/pricing/types"

	"github.com/shtetl/zmanim-ops/internal/stacks/cost"
)

// PriceList is the one call of the AWS Price List Query API the refresh makes. The API is
// served only from a few regions (us-east-1 here). No local emulator implements it (kumo has
// no Pricing service), so the tests use a recorded GetProducts response shape and a real call
// runs only as an acceptance test (ZOPS_AWS_ACCEPTANCE=1).
type PriceList interface {
	// GetProducts returns one page of price list documents (JSON strings) of the products of
	// ServiceCode matching every filter, and a NextToken while more pages remain.
	GetProducts(ctx context.Context, in *pricing.GetProductsInput, opts ...func(*pricing.Options)) (*pricing.GetProductsOutput, error)
}

var _ PriceList = (*pricing.Client)(nil)

// PricingRegion is where the Price List Query API is called.
const PricingRegion = "us-east-1"

// query says how one price key is found in the price list.
type query struct {
	key, service string
	filters      [][2]string // field, value (TERM_MATCH)
	begin        string      // the tier's beginRange; "0" is the first tier
	scale        float64     // the table's unit over the list's (per 1,000 requests: 1000)
}

// locations maps a region to the price list's location attribute and usage-type prefix.
var locations = map[string]struct{ location, prefix string }{
	"eu-west-1": {"EU (Ireland)", "EU-"},
	"us-east-1": {"US East (N. Virginia)", ""},
}

// queries are the on-demand values the price list serves for region, for the keys of old.
// Free tiers, Savings Plans rates and Route 53's optional features are not in the AmazonEC2 /
// AmazonRoute53 offers GetProducts serves; they keep their recorded source.
func queries(old *cost.Prices, region string) ([]query, error) {
	loc, ok := locations[region]
	if !ok {
		return nil, fmt.Errorf("refresh prices: no price list location known for %s; add it to locations in internal/stacks/cost/refresh.go", region)
	}
	rc := [2]string{"regionCode", region}
	var qs []query
	for _, k := range old.Keys() {
		parts := strings.Split(k, ".")
		switch {
		case len(parts) == 4 && parts[0] == "ec2" && parts[3] == "hour": // ec2.<family>.<size>.hour
			qs = append(qs, query{key: k, service: "AmazonEC2", begin: "0", scale: 1, filters: [][2]string{rc,
				{"instanceType", parts[1] + "." + parts[2]}, {"operatingSystem", "Linux"}, {"tenancy", "Shared"},
				{"preInstalledSw", "NA"}, {"capacitystatus", "Used"}, {"licenseModel", "No License required"}}})
		case len(parts) == 3 && parts[0] == "ebs" && parts[2] == "gb_month" && parts[1] != "snapshot":
			qs = append(qs, query{key: k, service: "AmazonEC2", begin: "0", scale: 1, filters: [][2]string{rc, {"productFamily", "Storage"}, {"volumeApiName", parts[1]}}})
		}
	}
	return append(qs,
		query{key: cost.KeyEBSSnapshot, service: "AmazonEC2", begin: "0", scale: 1, filters: [][2]string{rc, {"usagetype", loc.prefix + "EBS:SnapshotUsage"}}},
		query{key: cost.KeyIPv4Hour, service: "AmazonVPC", begin: "0", scale: 1, filters: [][2]string{rc, {"usagetype", loc.prefix + "PublicIPv4:InUseAddress"}}},
		query{key: cost.KeyS3GBMonth, service: "AmazonS3", begin: "0", scale: 1, filters: [][2]string{rc, {"productFamily", "Storage"}, {"volumeType", "Standard"}}},
		query{key: cost.KeyS3PutPer1k, service: "AmazonS3", begin: "0", scale: 1000, filters: [][2]string{rc, {"group", "S3-API-Tier1"}}},
		query{key: cost.KeyS3GetPer1k, service: "AmazonS3", begin: "0", scale: 1000, filters: [][2]string{rc, {"group", "S3-API-Tier2"}}},
		query{key: cost.KeyAPIGWPerMillion, service: "AmazonApiGateway", begin: "0", scale: 1e6, filters: [][2]string{rc, {"usagetype", loc.prefix + "ApiGatewayHttpRequest"}}},
		query{key: cost.KeyAlarmMetric, service: "AmazonCloudWatch", begin: "0", scale: 1, filters: [][2]string{rc, {"usagetype", loc.prefix + "CW:AlarmMonitorUsage"}}},
		query{key: cost.KeyCustomMetric, service: "AmazonCloudWatch", begin: "0", scale: 1, filters: [][2]string{rc, {"usagetype", loc.prefix + "CW:MetricMonitorUsage"}}},
		query{key: cost.KeyLogsIngestGB, service: "AmazonCloudWatch", begin: "0", scale: 1, filters: [][2]string{rc, {"usagetype", loc.prefix + "DataProcessing-Bytes"}}},
		query{key: cost.KeyLogsStoreGB, service: "AmazonCloudWatch", begin: "0", scale: 1, filters: [][2]string{rc, {"usagetype", loc.prefix + "TimedStorage-ByteHrs"}}},
		// CloudFront bills by the edge's geography; the shield in eu-west-1 at the Europe rate.
		query{key: cost.KeyCFHTTPSPer10k, service: "AmazonCloudFront", begin: "0", scale: 1e4, filters: [][2]string{{"usagetype", "EU-Requests-Tier2-HTTPS"}}},
		query{key: cost.KeyShieldPer10k, service: "AmazonCloudFront", begin: "0", scale: 1e4, filters: [][2]string{{"usagetype", "EU-Requests-OriginShield"}}},
		query{key: cost.KeyCFDataOutGB, service: "AmazonCloudFront", begin: "0", scale: 1, filters: [][2]string{{"usagetype", "EU-DataTransfer-Out-Bytes"}}},
		query{key: cost.KeyHostedZone, service: "AmazonRoute53", begin: "0", scale: 1, filters: [][2]string{{"usagetype", "HostedZone"}}},
	), nil
}

// Refreshed is what a refresh did to one key.
type Refreshed struct {
	Key      string
	Old, New float64
	// Kept says why the old value stayed (no product, several prices); empty when refreshed.
	Kept string
}

// Refresh returns a copy of old dated today in which every value the price list serves for
// old's region is replaced with the listed on-demand price and its source (service, filters,
// SKU, offer version); values it cannot find unambiguously keep their recorded source.
func Refresh(ctx context.Context, pl PriceList, old *cost.Prices, today string) (*cost.Prices, []Refreshed, error) {
	qs, err := queries(old, old.Region)
	if err != nil {
		return nil, nil, err
	}
	nw := &cost.Prices{Region: old.Region, Currency: old.Currency, Recorded: today, Note: old.Note, Values: map[string]cost.Price{}}
	for k, v := range old.Values {
		nw.Values[k] = v
	}
	var out []Refreshed
	for _, q := range qs {
		prev, had := old.Values[q.key]
		if !had {
			continue // the table decides which keys exist
		}
		v, src, why, err := lookupPrice(ctx, pl, q, old.Currency)
		if err != nil {
			return nil, nil, err
		}
		r := Refreshed{Key: q.key, Old: prev.Value, New: prev.Value, Kept: why}
		if why == "" {
			r.New = v
			nw.Values[q.key] = cost.Price{Value: v, Unit: prev.Unit, Source: src, Read: today}
		}
		out = append(out, r)
	}
	return nw, out, nil
}

// priceDoc is the part of a price list document the refresh reads.
type priceDoc struct {
	Product struct {
		SKU        string            `json:"sku"`
		Attributes map[string]string `json:"attributes"`
	} `json:"product"`
	Terms struct {
		OnDemand map[string]struct {
			EffectiveDate   string `json:"effectiveDate"`
			PriceDimensions map[string]struct {
				Unit         string            `json:"unit"`
				BeginRange   string            `json:"beginRange"`
				Description  string            `json:"description"`
				PricePerUnit map[string]string `json:"pricePerUnit"`
			} `json:"priceDimensions"`
		} `json:"OnDemand"`
	} `json:"terms"`
	Version         string `json:"version"`
	PublicationDate string `json:"publicationDate"`
}

// lookupPrice pages through GetProducts for q and returns the one on-demand price of the tier
// q.begin scaled to the table's unit, or why there is none.
func lookupPrice(ctx context.Context, pl PriceList, q query, currency string) (float64, string, string, error) {
	in := &pricing.GetProductsInput{ServiceCode: aws.String(q.service), FormatVersion: aws.String("aws_v1"), MaxResults: aws.Int32(100)}
	var desc []string
	for _, f := range q.filters {
		in.Filters = append(in.Filters, types.Filter{Field: aws.String(f[0]), Type: types.FilterTypeTermMatch, Value: aws.String(f[1])})
		desc = append(desc, f[0]+"="+f[1])
	}
	type hit struct {
		price                           float64
		sku, version, published, detail string
	}
	var hits []hit
	for {
		resp, err := pl.GetProducts(ctx, in)
		if err != nil {
			return 0, "", "", fmt.Errorf("refresh %s: pricing:GetProducts %s %s: %w", q.key, q.service, strings.Join(desc, ","), err)
		}
		for _, doc := range resp.PriceList {
			var d priceDoc
			if err := json.Unmarshal([]byte(doc), &d); err != nil {
				return 0, "", "", fmt.Errorf("refresh %s: parse price list document: %w", q.key, err)
			}
			for _, term := range d.Terms.OnDemand {
				for _, pd := range term.PriceDimensions {
					if pd.BeginRange != q.begin {
						continue
					}
					s, ok := pd.PricePerUnit[currency]
					if !ok {
						continue
					}
					v, err := strconv.ParseFloat(s, 64)
					if err != nil {
						return 0, "", "", fmt.Errorf("refresh %s: SKU %s: price %q: %w", q.key, d.Product.SKU, s, err)
					}
					hits = append(hits, hit{price: v * q.scale, sku: d.Product.SKU, version: d.Version, published: d.PublicationDate,
						detail: fmt.Sprintf("%s per %s", strings.TrimSpace(pd.Description), pd.Unit)})
				}
			}
		}
		if resp.NextToken == nil || *resp.NextToken == "" {
			break
		}
		in.NextToken = resp.NextToken
	}
	what := fmt.Sprintf("%s %s", q.service, strings.Join(desc, ","))
	if len(hits) == 0 {
		return 0, "", "no on-demand price of tier " + q.begin + " matched " + what, nil
	}
	prices := map[float64][]string{}
	for _, h := range hits {
		prices[h.price] = append(prices[h.price], h.sku)
	}
	if len(prices) > 1 {
		var alts []string
		for p, skus := range prices {
			alts = append(alts, fmt.Sprintf("%g (SKU %s)", p, strings.Join(skus, ",")))
		}
		sort.Strings(alts)
		return 0, "", fmt.Sprintf("%d different prices matched %s: %s; narrow the filters", len(prices), what, strings.Join(alts, "; ")), nil
	}
	h := hits[0]
	src := fmt.Sprintf("AWS Price List Query API (pricing:GetProducts, %s endpoint): %s, SKU %s, offer version %s published %s: %q",
		PricingRegion, what, h.sku, h.version, h.published, h.detail)
	if q.scale != 1 {
		src += fmt.Sprintf(", x %g", q.scale)
	}
	return h.price, src, "", nil
}

// WriteRefresh prints what a refresh changed and kept.
func WriteRefresh(w io.Writer, rs []Refreshed) {
	changed, kept := 0, 0
	for _, r := range rs {
		switch {
		case r.Kept != "":
			kept++
			fmt.Fprintf(w, "  kept     %-40s %g: %s\n", r.Key, r.Old, r.Kept)
		case r.New != r.Old:
			changed++
			fmt.Fprintf(w, "  changed  %-40s %g -> %g\n", r.Key, r.Old, r.New)
		default:
			fmt.Fprintf(w, "  same     %-40s %g\n", r.Key, r.New)
		}
	}
	fmt.Fprintf(w, "prices: queried=%d changed=%d kept=%d\n", len(rs), changed, kept)
}
