package site

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/config"
)

// Endpoint overrides the S3 endpoint and credentials (tests, benchmarks, the twin).
type Endpoint struct {
	URL, AccessKey, SecretKey, Region string
}

// NewS3Client returns a path-style S3 client for an explicit S3-compatible endpoint (tests
// and the benchmark; site:sync takes its clients from awsx).
func NewS3Client(ep Endpoint) *s3.Client {
	region := ep.Region
	if region == "" {
		region = "us-east-1"
	}
	return s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(ep.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(ep.AccessKey, ep.SecretKey, ""),
	})
}

// EnvOptions are the ZOPS_SITE_* options shared by site:sync, site:plan and bench:site.
type EnvOptions struct {
	Grace          time.Duration
	MaxDeleteShare float64
	PathBudget     int
	Wait           time.Duration
	Concurrency    int
	Distribution   string
	Bucket         string
}

// ReadEnv reads the ZOPS_SITE_* variables, listing every bad one at once.
func ReadEnv() (EnvOptions, error) {
	var o EnvOptions
	var problems []string
	dur := func(name string, into *time.Duration) {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s=%q is not a duration (write e.g. 90s, 48h)", name, v))
				return
			}
			*into = d
			if d == 0 && name == "ZOPS_SITE_GRACE" {
				*into = -1 // delete at once
			}
		}
	}
	num := func(name string, into *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				problems = append(problems, fmt.Sprintf("%s=%q must be a positive integer", name, v))
				return
			}
			*into = n
		}
	}
	dur("ZOPS_SITE_GRACE", &o.Grace)
	dur("ZOPS_SITE_WAIT", &o.Wait)
	num("ZOPS_SITE_PATHS", &o.PathBudget)
	num("ZOPS_SITE_CONCURRENCY", &o.Concurrency)
	if v := os.Getenv("ZOPS_SITE_MAX_DELETE"); v != "" {
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if strings.HasSuffix(v, "%") {
			f /= 100
		}
		if err != nil || f <= 0 || f > 1 {
			problems = append(problems, fmt.Sprintf("ZOPS_SITE_MAX_DELETE=%q must be a share in (0,1] such as 0.5 or 50%%", v))
		} else {
			o.MaxDeleteShare = f
		}
	}
	o.Distribution = os.Getenv(awsx.EnvDistributionID)
	if v := os.Getenv("ZOPS_SITE_DISTRIBUTION_ID"); v != "" {
		problems = append(problems, fmt.Sprintf("ZOPS_SITE_DISTRIBUTION_ID=%q is no longer read: set %s (one variable for the distribution, shared with edge:invalidate)", v, awsx.EnvDistributionID))
	}
	o.Bucket = os.Getenv("ZOPS_SITE_BUCKET")
	if len(problems) > 0 {
		return o, fmt.Errorf("site options:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return o, nil
}

// Target is where a sync goes: the bucket store and the CDN.
type Target struct {
	Store       *S3Store
	Invalidator Invalidator
	Bucket      string
}

// TargetFor builds the store and invalidator of an environment from awsx: on the twin its S3
// server and its edge's CloudFront API, in AWS the default credential chain and real
// CloudFront (the distribution eo.Distribution, else the one whose alias is the domain).
func TargetFor(ctx context.Context, env *config.Env, eo EnvOptions) (*Target, error) {
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
	return &Target{Store: NewS3Store(c.S3, bucket, conc, nil), Invalidator: cf, Bucket: bucket}, nil
}
