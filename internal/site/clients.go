package site

import (
	"context"
	"fmt"
	"time"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/s3lock"
)

// EnvOptions are the ZOPS_SITE_* options shared by site:sync, site:plan and bench:site
// (read by ReadEnv in targets.go).
type EnvOptions struct {
	Grace          time.Duration
	MaxDeleteShare float64
	PathBudget     int
	Wait           time.Duration
	Concurrency    int
	Distribution   string
	Bucket         string
	// NoInvalidate skips the CDN invalidation (ZOPS_SITE_INVALIDATE=0): a bucket with no
	// distribution in front, or bench:site timing the command beside aws s3 sync.
	NoInvalidate bool
	LockWait     time.Duration // ZOPS_LOCK_WAIT: queue behind another sync this long
}

// Destination is where a sync goes: the bucket store and the CDN.
type Destination struct {
	Store       *S3Store
	Invalidator Invalidator
	Bucket      string
	// Lease holds the sync lock (LockKey) in the same bucket.
	Lease s3lock.Store
}

// DestinationFor builds the store and invalidator of an environment from awsx: on the twin its S3
// server and its edge's CloudFront API, in AWS the default credential chain and real
// CloudFront (the distribution eo.Distribution, else the one whose alias is the domain).
func DestinationFor(ctx context.Context, env *config.Env, eo EnvOptions) (*Destination, error) {
	bucket := env.Buckets.Static
	if eo.Bucket != "" {
		bucket = eo.Bucket
	}
	conc := eo.Concurrency
	if conc == 0 {
		conc = DefaultConcurrency
	}
	c, err := awsx.New(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("aws clients for %s: %w", env.Name, err)
	}
	cf, err := c.Distribution(ctx, eo.Distribution)
	if err != nil {
		return nil, fmt.Errorf("the distribution in front of s3://%s: %w", bucket, err)
	}
	return &Destination{Store: NewS3Store(c.S3, bucket, conc, nil), Invalidator: cf, Bucket: bucket, Lease: &s3lock.S3{Client: c.S3, Bucket: bucket}}, nil
}
