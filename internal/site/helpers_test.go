package site

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/testfix"
)

// s3env returns the twin's S3 server (real versitygw, through testfix) as an Endpoint.
func s3env(t *testing.T) awsx.S3Endpoint {
	t.Helper()
	s := testfix.RequireS3(t)
	return awsx.S3Endpoint{URL: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey, Region: s.Region}
}

// newBucket creates a scratch bucket (removed when the test ends) and returns a store on it.
func newBucket(t *testing.T, ep awsx.S3Endpoint) (*S3Store, *s3.Client) {
	t.Helper()
	name := testfix.RequireS3(t).NewBucket(t, "site-test")
	c := awsx.NewS3(ep)
	return NewS3Store(c, name, 16, nil), c
}

// writeTree writes files (key -> content) under a new temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for k, v := range files {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// clock is a settable Now.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)} }
func quiet() io.Writer                   { return io.Discard }
func getBody(t *testing.T, c *s3.Client, bucket, key string) (string, *s3.GetObjectOutput) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b), out
}

func bucketKeys(t *testing.T, st *S3Store) []string {
	t.Helper()
	l, err := st.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range l {
		keys = append(keys, k)
	}
	return sortStrings(keys)
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && strings.Compare(s[j-1], s[j]) > 0; j-- {
			s[j-1], s[j] = s[j], s[j-1]
		}
	}
	return s
}
