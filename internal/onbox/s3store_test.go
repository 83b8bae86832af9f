package onbox

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// TestS3StoreAgainstTheTwin checks the S3Store's conditional writes and its error mapping
// (internal/awsx/awserr) against the twin's real S3 server (versitygw).
func TestS3StoreAgainstTheTwin(t *testing.T) {
	region := testenv.Require(t, testenv.S3Region)
	client := s3.New(s3.Options{
		Region: region, BaseEndpoint: aws.String(testenv.Require(t, testenv.S3Endpoint)), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(testenv.Require(t, testenv.S3AccessKey), testenv.Require(t, testenv.S3SecretKey), ""),
	})
	ctx := context.Background()
	name := fmt.Sprintf("onbox-test-%d", time.Now().UnixNano())
	if err := (&S3Store{Client: client, Name: name}).Check(ctx); !errors.Is(err, ErrNoBucket) {
		t.Fatalf("Check on a missing bucket: %v, want ErrNoBucket", err)
	}
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	st := &S3Store{Client: client, Name: name}
	t.Cleanup(func() {
		keys, _ := st.List(context.WithoutCancel(ctx), "")
		for _, k := range keys {
			_ = st.Delete(context.WithoutCancel(ctx), k, Cond{})
		}
		_, _ = client.DeleteBucket(context.WithoutCancel(ctx), &s3.DeleteBucketInput{Bucket: aws.String(name)})
	})
	must(t, st.Check(ctx))
	if _, _, err := st.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
	}
	etag, err := st.Put(ctx, "k", []byte("one"), Cond{IfAbsent: true})
	must(t, err)
	if _, err := st.Put(ctx, "k", []byte("two"), Cond{IfAbsent: true}); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("second IfAbsent put: %v, want ErrPrecondition", err)
	}
	if _, err := st.Put(ctx, "k", []byte("two"), Cond{IfMatch: `"0123"`}); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("put with a stale If-Match: %v, want ErrPrecondition", err)
	}
	if _, err := st.Put(ctx, "k", []byte("two"), Cond{IfMatch: etag}); err != nil {
		t.Fatalf("put with the current If-Match: %v", err)
	}
	must(t, st.Delete(ctx, "gone", Cond{}))
	if _, err := (&S3Store{Client: client, Name: name + "-missing"}).Put(ctx, "k", []byte("x"), Cond{}); !errors.Is(err, ErrNoBucket) {
		t.Fatalf("put into a missing bucket: %v, want ErrNoBucket", err)
	}
}
