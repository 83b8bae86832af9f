package site

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
)

// CachePaths returns the edge cache keys holding each key. The edge's directory-index
// function rewrites "/docs" and "/docs/" to "/docs/index.html" before the cache lookup, so
// the only cache key of a page is its rewritten path: invalidating "/docs/" would purge
// nothing. The root is the exception: CloudFront's default root object serves "/" under the
// cache key "/", so index.html is invalidated as both "/" and "/index.html".
func CachePaths(keys []string) []string {
	out := make([]string, 0, len(keys)+1)
	for _, k := range keys {
		if k == "index.html" {
			out = append(out, "/")
		}
		out = append(out, "/"+k)
	}
	return out
}

// Collapse reduces paths to at most budget invalidation paths by replacing groups with
// "dir/*" wildcards. It merges greedily, each time the directory that saves the most paths
// per unchanged cached path it would needlessly purge (universe holds every cacheable path),
// so a change confined to /docs/ invalidates /docs/* rather than /*. Paths are returned
// sorted and encoded as CloudFront wants them.
func Collapse(paths, universe []string, budget int) []string {
	if budget < 1 {
		budget = 1
	}
	set := map[string]bool{}
	for _, p := range paths {
		set[p] = true
	}
	changed := map[string]bool{}
	for _, p := range paths {
		changed[p] = true
	}
	for len(set) > budget {
		// Candidate directories: every proper ancestor "dir/" of a path in the set.
		groups := map[string]int{}
		for p := range set {
			base := strings.TrimSuffix(p, "*")
			for i := len(base) - 1; i >= 0; i-- {
				if base[i] == '/' && base[:i+1] != base {
					groups[base[:i+1]]++
				}
			}
		}
		best, bestScore := "", -1.0
		for d, n := range groups {
			if n < 2 {
				continue
			}
			collateral := 0
			for _, u := range universe {
				if strings.HasPrefix(u, d) && !changed[u] {
					collateral++
				}
			}
			score := float64(n-1) / float64(1+collateral)
			if score > bestScore || score == bestScore && len(d) > len(best) {
				best, bestScore = d, score
			}
		}
		if best == "" {
			set = map[string]bool{"/*": true}
			break
		}
		for p := range set {
			if strings.HasPrefix(p, best) {
				delete(set, p)
			}
		}
		set[best+"*"] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, encodePath(p))
	}
	sort.Strings(out)
	return out
}

// encodePath percent-encodes what CloudFront asks to be encoded in invalidation paths:
// non-ASCII bytes and the characters RFC 1738 calls unsafe. Anything else must stay as is,
// or the path no longer matches the cached object. A trailing "*" stays a wildcard.
func encodePath(p string) string {
	const unsafe = " <>\"#%{}|\\^~[]`"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x21 || c >= 0x7f || strings.IndexByte(unsafe, c) >= 0 || c == '*' && i != len(p)-1 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// CloudFront invalidates through the CloudFront API (the twin's edge implements the same
// CreateInvalidation/GetInvalidation calls).
type CloudFront struct {
	Client       *cloudfront.Client
	Distribution string
	// Poll is the first delay between status checks (default 500ms, doubling up to 5s).
	Poll time.Duration
}

var _ Invalidator = (*CloudFront)(nil)

// Invalidate implements Invalidator.
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

// ErrInvalidationTimeout is returned when an invalidation does not complete in time.
var ErrInvalidationTimeout = errors.New("invalidation did not complete in time")

// Wait implements Invalidator.
func (c *CloudFront) Wait(ctx context.Context, id string, timeout time.Duration) error {
	delay := c.Poll
	if delay <= 0 {
		delay = 500 * time.Millisecond
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
			return fmt.Errorf("%w: %s still in progress after %s; the new pages are uploaded, the edge may serve old ones until it completes (raise ZOPS_SITE_WAIT to wait longer)", ErrInvalidationTimeout, id, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}
