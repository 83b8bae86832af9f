package testfix

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// S3 is the twin's S3 server (versitygw, path-style) as tests reach it.
type S3 struct {
	Endpoint  string // http URL, no trailing slash
	AccessKey string
	SecretKey string
	Region    string // the region the server checks signatures for
	Client    *s3.Client
}

// RequireS3 returns the test S3 server, skipping (or failing in CI) when none is configured.
// versitygw checks the signing region: it is ZOPS_TEST_S3_REGION (exported with the endpoint
// by `mage test`), else the twin configuration's region, which the twin starts versitygw with.
func RequireS3(t testing.TB) S3 {
	t.Helper()
	s := S3{
		Endpoint:  strings.TrimSuffix(testenv.Require(t, testenv.S3Endpoint), "/"),
		AccessKey: testenv.Require(t, testenv.S3AccessKey),
		SecretKey: testenv.Require(t, testenv.S3SecretKey),
		Region:    os.Getenv(testenv.S3Region),
	}
	if s.Region == "" {
		env, err := config.LoadWith(config.Options{Path: os.Getenv(testenv.TwinConfigFile)})
		if err != nil {
			t.Fatalf("load the twin's configuration for the S3 region (or set %s): %v", testenv.S3Region, err)
		}
		s.Region = env.Region
	}
	s.Client = s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  s.Credentials(),
	})
	return s
}

// Credentials returns the server's static credentials.
func (s S3) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
}

// Env returns the credentials as AWS_* variables for a child program (restic).
func (s S3) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey}
}

// NewBucket creates an empty bucket named <prefix>-<random> and returns its name; when the test
// ends its objects and the bucket are deleted.
func (s S3) NewBucket(t testing.TB, prefix string) string {
	t.Helper()
	name := prefix + "-" + RandHex(5)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create test bucket %s on %s: %v", name, s.Endpoint, err)
	}
	t.Cleanup(func() {
		if err := s.removeBucket(name); err != nil {
			t.Logf("remove test bucket %s: %v", name, err)
		}
	})
	return name
}

// removeBucket deletes every object of the bucket, then the bucket.
func (s S3) removeBucket(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := s3.NewListObjectsV2Paginator(s.Client, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, 0, len(page.Contents))
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		if _, err := s.Client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(name), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		}); err != nil {
			return err
		}
	}
	_, err := s.Client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	return err
}
