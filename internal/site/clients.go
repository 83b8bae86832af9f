package site

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// TwinDistributionID is the distribution id the twin's edge answers to (internal/edge).
const TwinDistributionID = "E2TWINZMANIM01"

// Endpoint overrides the S3 endpoint and credentials (tests, benchmarks, the twin).
type Endpoint struct {
	URL, AccessKey, SecretKey, Region string
}

// NewS3Client returns a path-style S3 client for an S3-compatible endpoint.
// TODO(awsx): use awsx.New once it lands; this is the one place that builds clients.
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
	o.Distribution = os.Getenv("ZOPS_SITE_DISTRIBUTION_ID")
	o.Bucket = os.Getenv("ZOPS_SITE_BUCKET")
	if len(problems) > 0 {
		return o, fmt.Errorf("site options:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return o, nil
}

// Target is where a sync goes: the bucket store and the CDN.
type Target struct {
	Store       *S3Store
	Invalidator Invalidator // nil when no distribution is known
	Bucket      string
}

// TargetFor builds the store and invalidator of an environment: on the twin, its S3 server
// (credentials from ZOPS_S3_ACCESS_KEY/ZOPS_S3_SECRET_KEY or AWS_ACCESS_KEY_ID/...) and its
// edge's control API; in AWS, the default credential chain and real CloudFront
// (distribution id from ZOPS_SITE_DISTRIBUTION_ID).
func TargetFor(ctx context.Context, env *config.Env, eo EnvOptions) (*Target, error) {
	bucket := env.Buckets.Static
	if eo.Bucket != "" {
		bucket = eo.Bucket
	}
	conc := eo.Concurrency
	if conc == 0 {
		conc = DefaultConcurrency
	}
	if env.IsTwin() {
		ep := Endpoint{
			URL:       firstNonEmpty(os.Getenv("ZOPS_S3_ENDPOINT"), env.URL(env.Twin.Ports.S3)),
			AccessKey: firstNonEmpty(os.Getenv("ZOPS_S3_ACCESS_KEY"), os.Getenv("AWS_ACCESS_KEY_ID")),
			SecretKey: firstNonEmpty(os.Getenv("ZOPS_S3_SECRET_KEY"), os.Getenv("AWS_SECRET_ACCESS_KEY")),
			Region:    env.Region,
		}
		if ep.AccessKey == "" || ep.SecretKey == "" {
			return nil, fmt.Errorf("twin S3 credentials missing: set ZOPS_S3_ACCESS_KEY and ZOPS_S3_SECRET_KEY (the twin prints them on start)")
		}
		t := &Target{Store: NewS3Store(NewS3Client(ep), bucket, conc, nil), Bucket: bucket}
		cf := cloudfront.New(cloudfront.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(firstNonEmpty(os.Getenv("ZOPS_SITE_CLOUDFRONT_ENDPOINT"), env.URL(env.Twin.Ports.Control))),
			Credentials:  credentials.NewStaticCredentialsProvider(ep.AccessKey, ep.SecretKey, ""),
		})
		t.Invalidator = &CloudFront{Client: cf, Distribution: firstNonEmpty(eo.Distribution, TwinDistributionID), Poll: 100 * time.Millisecond}
		return t, nil
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(env.Region))
	if err != nil {
		return nil, fmt.Errorf("load AWS credentials: %w", err)
	}
	t := &Target{Store: NewS3Store(s3.NewFromConfig(cfg), bucket, conc, nil), Bucket: bucket}
	if eo.Distribution == "" {
		return nil, fmt.Errorf("no CloudFront distribution: set ZOPS_SITE_DISTRIBUTION_ID to the distribution in front of s3://%s (the CDN stack's output DistributionId)", bucket)
	}
	t.Invalidator = &CloudFront{Client: cloudfront.NewFromConfig(cfg), Distribution: eo.Distribution}
	return t, nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
