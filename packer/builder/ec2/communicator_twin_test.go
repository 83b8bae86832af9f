package ec2

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// TestCommunicatorRealS3 runs the communicator's S3 side against the twin's real S3 server
// (versitygw): real SigV4 presigned URLs fetched and put by curl, real PutObject, GetObject,
// DeleteObject. Only SSM stays fake (no emulator has SendCommand). Run with the twin's
// addresses: /work/bin/zt go test -run RealS3 ./builder/ec2 (in packer/).
func TestCommunicatorRealS3(t *testing.T) {
	endpoint := testenv.Require(t, testenv.S3Endpoint)
	cl := s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint), UsePathStyle: true, Region: testenv.Require(t, testenv.S3Region),
		Credentials:                credentials.NewStaticCredentialsProvider(testenv.Require(t, testenv.S3AccessKey), testenv.Require(t, testenv.S3SecretKey), ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	ctx := context.Background()
	bucket := fmt.Sprintf("zops-packer-test-%d", time.Now().UnixNano())
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String(bucket)}) })

	f := newFakeAWS(t) // SSM only
	c := &Communicator{InstanceID: "i-1", Bucket: bucket, Prefix: "ami-staging/t/", SSM: f, S3: cl, Presign: s3.NewPresignClient(cl), Poll: 5 * time.Millisecond}

	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "run.sh"), []byte("echo recipe over real S3\n"), 0o755)
	dst := filepath.Join(t.TempDir(), "zops")
	if err := c.UploadDir(dst+"/recipe", src+"/", nil); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := &packersdk.RemoteCmd{Command: "sh " + dst + "/recipe/run.sh; seq 1 20000", Stdout: &out, Stderr: &out}
	if err := c.Start(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	if code := cmd.Wait(); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if !strings.HasPrefix(out.String(), "recipe over real S3\n") || !strings.HasSuffix(out.String(), "\n20000\n") {
		t.Errorf("output through S3 incomplete (%d bytes): %.200q", out.Len(), out.String())
	}
	if err := c.DeleteStaged(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 0 {
		t.Errorf("%d staged objects left", len(list.Contents))
	}
}
