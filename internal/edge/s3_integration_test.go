package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// TestStaticOriginOnRealS3 serves a bucket on the twin's S3 server (versitygw) through the
// edge: anonymous reads are refused there, so this proves the edge signs its origin requests
// (origin access control), maps "/docs/" to docs/index.html and revalidates with S3's ETag.
func TestStaticOriginOnRealS3(t *testing.T) {
	endpoint := testenv.Require(t, testenv.S3Endpoint)
	access := testenv.Require(t, testenv.S3AccessKey)
	secret := testenv.Require(t, testenv.S3SecretKey)
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(access, secret, "")
	region := s3Region(t)
	cli := s3.New(s3.Options{BaseEndpoint: aws.String(endpoint), UsePathStyle: true, Region: region, Credentials: creds})
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	bucket := "zops-edge-test-" + hex.EncodeToString(b)
	if _, err := cli.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	objects := map[string]string{"index.html": "<h1>home</h1>", "docs/index.html": "<h1>docs</h1>", "app.3f2a.js": "console.log(1)"}
	t.Cleanup(func() {
		for k := range objects {
			_, _ = cli.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		}
		_, _ = cli.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	})
	for k, v := range objects {
		if _, err := cli.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(v), ContentType: aws.String("text/html"), CacheControl: aws.String("max-age=300")}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	// Anonymous reads are refused: the edge cannot just proxy.
	resp, err := http.Get(strings.TrimSuffix(endpoint, "/") + "/" + bucket + "/index.html")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("the S3 server serves anonymous reads; origin access control is not exercised")
	}

	api := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(api.Close)
	var lastStatus atomic.Int64
	e, err := New(Options{
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := http.DefaultTransport.RoundTrip(r)
			if err == nil {
				lastStatus.Store(int64(resp.StatusCode))
			}
			return resp, err
		}),
		Config: config.DefaultEdge(),
		Origins: map[string]OriginTarget{
			config.OriginIDAPI:    {URL: api.URL},
			config.OriginIDStatic: {URL: strings.TrimSuffix(endpoint, "/") + "/" + bucket, S3: &S3Auth{Region: region, Credentials: creds}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, body, xcache string
		status             int
	}{
		{"/docs/", "<h1>docs</h1>", "Miss from cloudfront", 200},
		{"/docs", "<h1>docs</h1>", "Hit from cloudfront", 200},
		{"/", "<h1>home</h1>", "Miss from cloudfront", 200},
		{"/app.3f2a.js", "console.log(1)", "Miss from cloudfront", 200},
		{"/app.3f2a.js", "console.log(1)", "Hit from cloudfront", 200},
		{"/missing.html", "", "Miss from cloudfront", 404},
	}
	for _, tc := range tests {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if w.Code != tc.status || w.Header().Get("X-Cache") != tc.xcache || (tc.body != "" && w.Body.String() != tc.body) {
			t.Fatalf("%s: %d %q %q; want %d %q %q", tc.path, w.Code, w.Header().Get("X-Cache"), w.Body.String(), tc.status, tc.xcache, tc.body)
		}
	}
	// A conditional request with S3's ETag is answered 304 by S3: the basis of RefreshHit.
	for _, tr := range []*tier{e.edge, e.shield} {
		for _, ent := range tr.m {
			ent.expires = ent.date
		}
	}
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/docs/", nil))
	if w.Code != 200 || w.Body.String() != "<h1>docs</h1>" || w.Header().Get("X-Cache") != "RefreshHit from cloudfront" || lastStatus.Load() != http.StatusNotModified {
		t.Fatalf("revalidated /docs/: %d %q %s, S3 answered %d; want 200, RefreshHit, S3 304", w.Code, w.Body.String(), w.Header().Get("X-Cache"), lastStatus.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// s3Region is the region the S3 server signs for: $ZOPS_TEST_S3_REGION, else the twin
// configuration's region (the twin runs versitygw with --region set to it).
func s3Region(t *testing.T) string {
	if r := os.Getenv("ZOPS_TEST_S3_REGION"); r != "" {
		return r
	}
	return twinEnv(t).Region
}
