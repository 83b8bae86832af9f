package awsx

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
)

// ErrNoPaths is returned when an invalidation names no path.
var ErrNoPaths = errors.New("no paths to invalidate")

// ErrInvalidationTimeout is returned when an invalidation does not complete in time.
var ErrInvalidationTimeout = errors.New("invalidation did not complete in time")

// CloudFrontAPI is the part of the CloudFront API the toolkit uses; *cloudfront.Client
// implements it against AWS and against the twin's edge control handler alike.
type CloudFrontAPI interface {
	// CreateInvalidation starts purging paths; the answer carries the invalidation's id.
	CreateInvalidation(context.Context, *cloudfront.CreateInvalidationInput, ...func(*cloudfront.Options)) (*cloudfront.CreateInvalidationOutput, error)
	// GetInvalidation reports an invalidation's status (InProgress, Completed).
	GetInvalidation(context.Context, *cloudfront.GetInvalidationInput, ...func(*cloudfront.Options)) (*cloudfront.GetInvalidationOutput, error)
	// ListDistributions pages through the account's distributions (to find one by alias).
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

// CloudFront invalidates paths on one distribution: the one definition of CreateInvalidation
// and of waiting for it, used by site:sync and edge:invalidate, in AWS and on the twin.
type CloudFront struct {
	Client       CloudFrontAPI
	Distribution string
	// Poll is the first delay between status checks (default 500ms, doubling up to MaxPoll).
	Poll time.Duration
	// MaxPoll caps the delay between status checks (default 5s).
	MaxPoll time.Duration
}

// Invalidate creates an invalidation of paths and returns its id. reference is the caller
// reference: CloudFront treats a repeated reference with the same paths as the same request.
func (c *CloudFront) Invalidate(ctx context.Context, paths []string, reference string) (string, error) {
	out, err := c.Client.CreateInvalidation(ctx, &cloudfront.CreateInvalidationInput{
		DistributionId: aws.String(c.Distribution),
		InvalidationBatch: &cftypes.InvalidationBatch{
			CallerReference: aws.String(reference),
			Paths:           &cftypes.Paths{Quantity: aws.Int32(int32(len(paths))), Items: paths},
		},
	})
	if err != nil {
		return "", fmt.Errorf("create invalidation on distribution %s: %w", c.Distribution, err)
	}
	if out.Invalidation == nil {
		return "", fmt.Errorf("create invalidation on distribution %s: empty response", c.Distribution)
	}
	return aws.ToString(out.Invalidation.Id), nil
}

// Wait polls the invalidation until it is Completed or timeout passes (ErrInvalidationTimeout:
// the invalidation goes on in CloudFront).
func (c *CloudFront) Wait(ctx context.Context, id string, timeout time.Duration) error {
	delay := c.Poll
	if delay <= 0 {
		delay = 500 * time.Millisecond
	}
	maxDelay := c.MaxPoll
	if maxDelay <= 0 {
		maxDelay = 5 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		out, err := c.Client.GetInvalidation(ctx, &cloudfront.GetInvalidationInput{DistributionId: aws.String(c.Distribution), Id: aws.String(id)})
		if err != nil {
			return fmt.Errorf("get invalidation %s: %w", id, err)
		}
		if out.Invalidation != nil && aws.ToString(out.Invalidation.Status) == "Completed" {
			return nil
		}
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("%w: %s still in progress after %s; it goes on in CloudFront, and the edge may serve old objects until it completes", ErrInvalidationTimeout, id, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, maxDelay)
	}
}

// InvalidateAndWait invalidates paths and, when wait > 0, waits up to wait for completion.
func (c *CloudFront) InvalidateAndWait(ctx context.Context, paths []string, wait time.Duration) (Invalidation, error) {
	id, err := c.Invalidate(ctx, paths, "zops-"+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err != nil {
		return Invalidation{}, err
	}
	inv := Invalidation{ID: id, Status: "InProgress", Paths: paths}
	if wait <= 0 {
		return inv, nil
	}
	if err := c.Wait(ctx, id, wait); err != nil {
		return inv, err
	}
	inv.Status = "Completed"
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
	return "", fmt.Errorf("no CloudFront distribution has the alias %s: set %s to the CDN stack's DistributionId", domain, EnvDistributionID)
}

// EnvDistributionID names the one variable that overrides the distribution id (read by the
// targets' option readers, never here).
const EnvDistributionID = "ZOPS_DISTRIBUTION_ID"

// Distribution returns the CloudFront distribution of the clients' environment: id when the
// caller has one (ZOPS_DISTRIBUTION_ID), the twin edge's fixed id locally, else the
// distribution whose alias is the environment's domain.
func (c *Clients) Distribution(ctx context.Context, id string) (*CloudFront, error) {
	cf := &CloudFront{Client: c.CloudFront, Distribution: id}
	if c.Env.IsTwin() {
		// The twin's edge completes invalidations at once: poll quickly.
		cf.Poll, cf.MaxPoll = 100*time.Millisecond, time.Second
		if cf.Distribution == "" {
			cf.Distribution = TwinDistributionID
		}
		return cf, nil
	}
	if cf.Distribution == "" {
		if c.Env.Domain == "" {
			return nil, fmt.Errorf("no CloudFront distribution for %s: set %s to the CDN stack's DistributionId output", c.Env.Name, EnvDistributionID)
		}
		found, err := FindDistribution(ctx, c.CloudFront, c.Env.Domain)
		if err != nil {
			return nil, err
		}
		cf.Distribution = found
	}
	return cf, nil
}
