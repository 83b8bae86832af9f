package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// ErrNoPaths is returned when an invalidation names no path.
var ErrNoPaths = errors.New("no paths to invalidate")

// CloudFrontAPI is the part of the CloudFront API an invalidation needs; *cloudfront.Client
// implements it against AWS and against the twin's control handler alike.
type CloudFrontAPI interface {
	CreateInvalidation(context.Context, *cloudfront.CreateInvalidationInput, ...func(*cloudfront.Options)) (*cloudfront.CreateInvalidationOutput, error)
	GetInvalidation(context.Context, *cloudfront.GetInvalidationInput, ...func(*cloudfront.Options)) (*cloudfront.GetInvalidationOutput, error)
	ListDistributions(context.Context, *cloudfront.ListDistributionsInput, ...func(*cloudfront.Options)) (*cloudfront.ListDistributionsOutput, error)
}

var _ CloudFrontAPI = (*cloudfront.Client)(nil)

// ParsePaths splits a comma- or space-separated list of invalidation paths, adds a missing
// leading "/", drops duplicates and checks CloudFront's rule that '*' may only end a path.
func ParsePaths(arg string) ([]string, error) {
	var out []string
	for p := range strings.FieldsFuncSeq(arg, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		if i := strings.Index(p, "*"); i >= 0 && i != len(p)-1 {
			return nil, fmt.Errorf("invalidation path %q: '*' may only be the last character (write /docs/* for everything under /docs/)", p)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: pass them like \"/index.html,/docs/*\" or \"/*\"", ErrNoPaths)
	}
	return out, nil
}

// Invalidation is one finished (or started) invalidation.
type Invalidation struct {
	ID     string
	Status string
	Paths  []string
}

// Invalidate creates an invalidation and, when wait > 0, waits up to wait for it to complete.
func Invalidate(ctx context.Context, cf CloudFrontAPI, distributionID string, paths []string, wait time.Duration) (Invalidation, error) {
	ref := "zops-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	out, err := cf.CreateInvalidation(ctx, &cloudfront.CreateInvalidationInput{
		DistributionId: aws.String(distributionID),
		InvalidationBatch: &cftypes.InvalidationBatch{
			CallerReference: aws.String(ref),
			Paths:           &cftypes.Paths{Quantity: aws.Int32(int32(len(paths))), Items: paths},
		},
	})
	if err != nil {
		return Invalidation{}, fmt.Errorf("create invalidation on %s: %w", distributionID, err)
	}
	inv := Invalidation{ID: aws.ToString(out.Invalidation.Id), Status: aws.ToString(out.Invalidation.Status), Paths: paths}
	if wait <= 0 || inv.Status == "Completed" {
		return inv, nil
	}
	w := cloudfront.NewInvalidationCompletedWaiter(cf, func(o *cloudfront.InvalidationCompletedWaiterOptions) {
		o.MinDelay = 2 * time.Second
		o.MaxDelay = 20 * time.Second
	})
	got, err := w.WaitForOutput(ctx, &cloudfront.GetInvalidationInput{DistributionId: aws.String(distributionID), Id: out.Invalidation.Id}, wait)
	if err != nil {
		return inv, fmt.Errorf("wait for invalidation %s: %w (it goes on in CloudFront; check it later)", inv.ID, err)
	}
	inv.Status = aws.ToString(got.Invalidation.Status)
	return inv, nil
}

// FindDistribution returns the id of the distribution that serves domain (one of its
// aliases).
func FindDistribution(ctx context.Context, cf CloudFrontAPI, domain string) (string, error) {
	var marker *string
	for {
		out, err := cf.ListDistributions(ctx, &cloudfront.ListDistributionsInput{Marker: marker})
		if err != nil {
			return "", fmt.Errorf("list distributions: %w", err)
		}
		if out.DistributionList == nil {
			break
		}
		for _, d := range out.DistributionList.Items {
			if d.Aliases != nil && slices.Contains(d.Aliases.Items, domain) {
				return aws.ToString(d.Id), nil
			}
		}
		if !aws.ToBool(out.DistributionList.IsTruncated) {
			break
		}
		marker = out.DistributionList.NextMarker
	}
	return "", fmt.Errorf("no CloudFront distribution has the alias %s: set ZOPS_DISTRIBUTION_ID to the CDN stack's DistributionId", domain)
}

// ClientFor returns a CloudFront client and the distribution id for env: on the twin the
// edge's control endpoint (twin.ports.control) and its fixed id; on AWS the default credential
// chain and the distribution whose alias is env.Domain (or $ZOPS_DISTRIBUTION_ID).
func ClientFor(ctx context.Context, env *config.Env) (*cloudfront.Client, string, error) {
	id := os.Getenv("ZOPS_DISTRIBUTION_ID")
	if env.IsTwin() {
		endpoint := os.Getenv("ZOPS_EDGE_CONTROL_URL")
		if endpoint == "" {
			endpoint = env.URL(env.Twin.Ports.Control)
		}
		cf := cloudfront.New(cloudfront.Options{
			BaseEndpoint: aws.String(endpoint),
			Region:       "us-east-1",
			// The twin's control endpoint listens on loopback and checks no signature.
			Credentials: credentials.NewStaticCredentialsProvider("twin", "twin", ""),
		})
		if id == "" {
			id = TwinDistributionID
		}
		return cf, id, nil
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(env.Region))
	if err != nil {
		return nil, "", fmt.Errorf("aws config for %s: %w", env.Name, err)
	}
	cf := cloudfront.NewFromConfig(cfg)
	if id == "" {
		if id, err = FindDistribution(ctx, cf, env.Domain); err != nil {
			return nil, "", err
		}
	}
	return cf, id, nil
}

// InvalidateTarget is `mage edge:invalidate PATHS`: it invalidates the paths on the selected
// environment's distribution and waits for completion (ZOPS_INVALIDATE_WAIT, default 15m;
// 0 returns at once).
func InvalidateTarget(ctx context.Context, arg string, out io.Writer) error {
	paths, err := ParsePaths(arg)
	if err != nil {
		return err
	}
	wait := 15 * time.Minute
	if v := os.Getenv("ZOPS_INVALIDATE_WAIT"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("ZOPS_INVALIDATE_WAIT=%q: write a duration like 5m, or 0 not to wait", v)
		}
	}
	env, err := config.Load()
	if err != nil {
		return err
	}
	cf, id, err := ClientFor(ctx, env)
	if err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(out, "invalidating %d path(s) on %s (%s): %s\n", len(paths), id, env.Name, strings.Join(paths, " "))
	inv, err := Invalidate(ctx, cf, id, paths, wait)
	if err != nil {
		if env.IsTwin() && strings.Contains(err.Error(), "connection refused") {
			return fmt.Errorf("%w; is the twin up? start it with `go tool mage twin:up`", err)
		}
		return err
	}
	fmt.Fprintf(out, "invalidation %s: %s in %s\n", inv.ID, inv.Status, time.Since(start).Round(time.Millisecond))
	return nil
}
