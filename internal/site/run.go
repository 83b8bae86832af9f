package site

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/twinstate"
)

// twinS3 returns the running twin's S3 endpoint, or an empty one when the twin is not up
// (the benchmark then starts its own versitygw).
func twinS3(ctx context.Context) Endpoint {
	env, err := config.Load()
	if err != nil || !env.IsTwin() {
		return Endpoint{}
	}
	sec, err := twinstate.Dir(env.Twin.StateDir).ReadSecrets()
	if err != nil {
		return Endpoint{}
	}
	ep := Endpoint{URL: env.URL(env.Twin.Ports.S3), AccessKey: sec.S3AccessKey, SecretKey: sec.S3SecretKey, Region: env.Region}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := NewS3Client(ep).ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		return Endpoint{}
	}
	return ep
}
