package site

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/edge"
	"github.com/shtetl/zmanim-ops/internal/site/nextgen"
)

// startEdge runs the twin's CloudFront emulation (internal/edge, the code the twin runs) in
// front of bucket, with the default distribution description (directory-index function,
// default root object, static cache policy), and returns its viewer URL and an Invalidator
// talking to its CloudFront API.
func startEdge(t *testing.T, ep awsx.S3Endpoint, bucket string) (string, *awsx.CloudFront) {
	t.Helper()
	e, err := edge.New(edge.Options{
		Config: config.DefaultEdge(),
		Origins: map[string]edge.OriginEndpoint{
			config.OriginIDStatic: {URL: ep.URL + "/" + bucket, S3: &edge.S3Auth{Region: ep.Region, Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKey, ep.SecretKey, "")}},
			config.OriginIDAPI:    {URL: "http://127.0.0.1:9"}, // unused here
		},
		ErrorCachingMinTTL: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	viewer := httptest.NewServer(e)
	control := httptest.NewServer(e.ControlHandler())
	t.Cleanup(viewer.Close)
	t.Cleanup(control.Close)
	cf := cloudfront.New(cloudfront.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(control.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("twin", "twin", ""),
	})
	return viewer.URL, &awsx.CloudFront{Client: cf, Distribution: e.DistributionID(), Poll: 50 * time.Millisecond}
}

func fetch(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r, string(b)
}

func TestThroughEdge(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	st, _ := newBucket(t, ep)
	viewer, cf := startEdge(t, ep, st.Bucket())
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	spec := nextgen.Small()
	ex1, err := nextgen.Write(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Sync(ctx, Options{Dir: dir, Store: st, Invalidator: cf, Now: clk.Now, Out: quiet()}); err != nil {
		t.Fatal(err)
	}
	// Warm the edge: every form of the docs index and the home page.
	for _, p := range []string{"/", "/docs", "/docs/", "/docs/index.html", "/" + ex1.PageChunks[1]} {
		if r, _ := fetch(t, viewer+p); r.StatusCode != 200 {
			t.Fatalf("%s: %d", p, r.StatusCode)
		}
	}
	if r, _ := fetch(t, viewer+"/docs/"); !strings.HasPrefix(r.Header.Get("X-Cache"), "Hit") {
		t.Fatalf("/docs/ not cached at the edge: X-Cache %q", r.Header.Get("X-Cache"))
	}
	// Deploy 2: the docs index changes (new page chunk); the old chunk leaves the site.
	dir2 := t.TempDir()
	spec.Changed, spec.Version = []int{1}, "v2"
	ex2, err := nextgen.Write(dir2, spec)
	if err != nil {
		t.Fatal(err)
	}
	sum, _, err := Sync(ctx, Options{Dir: dir2, Store: st, Invalidator: cf, Now: clk.Now, Out: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(sum.Invalidation, " ") != "/docs/index.html" || sum.InvalidationID == "" {
		t.Fatalf("invalidation %v (%q), want /docs/index.html", sum.Invalidation, sum.InvalidationID)
	}
	// The changed page is visible in every form at once.
	for _, p := range []string{"/docs", "/docs/", "/docs/index.html"} {
		r, body := fetch(t, viewer+p)
		if r.StatusCode != 200 || !strings.Contains(body, "version v2") {
			t.Fatalf("%s after deploy: %d, new content %v (X-Cache %s)", p, r.StatusCode, strings.Contains(body, "version v2"), r.Header.Get("X-Cache"))
		}
	}
	// An unchanged page stayed cached (no over-invalidation).
	if r, _ := fetch(t, viewer+"/"); !strings.HasPrefix(r.Header.Get("X-Cache"), "Hit") {
		t.Fatalf("home page purged needlessly: X-Cache %q", r.Header.Get("X-Cache"))
	}
	// The old chunk is still served during the grace period; the new one too.
	for _, k := range []string{ex1.PageChunks[1], ex2.PageChunks[1]} {
		if r, _ := fetch(t, viewer+"/"+k); r.StatusCode != 200 {
			t.Fatalf("%s: %d", k, r.StatusCode)
		}
	}
	// Headers, shown.
	for _, tc := range []struct{ path, ct, cc string }{
		{"/docs/", "text/html; charset=utf-8", CacheRevalidate},
		{"/" + ex2.PageChunks[1], "text/javascript; charset=utf-8", CacheImmutable},
		{"/sitemap.xml", "application/xml", CacheRevalidate},
		{"/site.webmanifest", "application/manifest+json", CacheRevalidate},
		{"/images/photo-002.webp", "image/webp", CacheRevalidate},
	} {
		r, _ := fetch(t, viewer+tc.path)
		t.Logf("GET %s -> %d Content-Type: %s | Cache-Control: %s | X-Cache: %s", tc.path, r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"), r.Header.Get("X-Cache"))
		if r.Header.Get("Content-Type") != tc.ct || r.Header.Get("Cache-Control") != tc.cc {
			t.Errorf("%s: Content-Type %q Cache-Control %q, want %q %q", tc.path, r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"), tc.ct, tc.cc)
		}
	}
}

// TestInvalidatePaths runs edge:invalidate's code against the edge's CloudFront API, the way
// `go tool mage edge:invalidate` reaches the twin.
func TestInvalidatePaths(t *testing.T) {
	_, cf := startEdge(t, awsx.S3Endpoint{URL: "http://127.0.0.1:9", Region: "us-east-1"}, "unused")
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := InvalidatePaths(ctx, &out, cf, []string{"/index.html", "/docs/*"}, time.Minute, "test"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "invalidating 2 path(s) on ") || !strings.Contains(out.String(), ": Completed in ") {
		t.Fatalf("output %q", out.String())
	}
}
