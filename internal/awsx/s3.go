package awsx

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/twinstate"
)

// S3Endpoint is an explicit S3-compatible server with static credentials: the twin's
// versitygw, or a throwaway one of a test or benchmark.
type S3Endpoint struct {
	URL, AccessKey, SecretKey string
	Region                    string // the region the server checks signatures for (default us-east-1)
}

// NewS3 returns a path-style S3 client for ep.
func NewS3(ep S3Endpoint) *s3.Client {
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

// TwinS3 returns the twin's S3 server with its administrator's credentials, generated into
// the state directory on the first twin:up.
func TwinS3(env *config.Env) (S3Endpoint, error) {
	if !env.IsTwin() {
		return S3Endpoint{}, fmt.Errorf("environment %s is not the local twin", env.Name)
	}
	sec, err := twinstate.Dir(env.Twin.StateDir).ReadSecrets()
	if err != nil {
		return S3Endpoint{}, err
	}
	return S3Endpoint{URL: env.URL(env.Twin.Ports.S3), AccessKey: sec.S3AccessKey, SecretKey: sec.S3SecretKey, Region: env.Region}, nil
}
