package edge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/testfix"
)

// TestStaticOriginOnRealS3 serves a bucket on the twin's S3 server (versitygw) through the
// edge: anonymous reads are refused there, so this proves the edge signs its origin requests
// (origin access control), maps "/docs/" to docs/index.html and revalidates with S3's ETag.
func TestStaticOriginOnRealS3(t *testing.T) {
	fx := testfix.RequireS3(t)
	endpoint, region, creds, cli := fx.Endpoint, fx.Region, fx.Credentials(), fx.Client
	ctx := context.Background()
	bucket := fx.NewBucket(t, "zops-edge-test")
	objects := map[string]string{"index.html": "<h1>home</h1>", "docs/index.html": "<h1>docs</h1>", "app.3f2a.js": "console.log(1)"}
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
		Origins: map[string]OriginEndpoint{
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
