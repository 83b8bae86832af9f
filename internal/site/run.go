package site

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/config"
)

// twinS3 returns the running twin's S3 endpoint, or an empty one when the twin is not up
// (the benchmark then starts its own versitygw).
func twinS3(ctx context.Context) awsx.S3Endpoint {
	env, err := config.Load()
	if err != nil || !env.IsTwin() {
		return awsx.S3Endpoint{}
	}
	ep, err := awsx.TwinS3(env)
	if err != nil {
		return awsx.S3Endpoint{}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := awsx.NewS3(ep).ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		return awsx.S3Endpoint{}
	}
	return ep
}
