package awsx

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
)

func TestParsePaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"/index.html,/docs/*", []string{"/index.html", "/docs/*"}, ""},
		{"/a /b\t/a", []string{"/a", "/b"}, ""},
		{"docs/*", []string{"/docs/*"}, ""},
		{"/*", []string{"/*"}, ""},
		{" , ", nil, "no paths"},
		{"/docs/*/x", nil, "may only be the last"},
	}
	for _, tc := range tests {
		got, err := ParsePaths(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePaths(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParsePaths(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestInvalidationWaitTimesOut(t *testing.T) {
	t.Parallel()
	inv := `<?xml version="1.0"?><Invalidation xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Id>I1</Id><Status>InProgress</Status><CreateTime>2026-11-27T12:00:00Z</CreateTime><InvalidationBatch><Paths><Quantity>1</Quantity><Items><Path>/x</Path></Items></Paths><CallerReference>r</CallerReference></InvalidationBatch></Invalidation>`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		if r.Method == http.MethodPost {
			w.Header().Set("Location", "http://x/2020-05-31/distribution/D/invalidation/I1")
			w.WriteHeader(http.StatusCreated)
		}
		io.WriteString(w, inv)
	}))
	defer srv.Close()
	cf := &CloudFront{Client: cloudfront.New(cloudfront.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}), Distribution: "D", Poll: 20 * time.Millisecond}
	id, err := cf.Invalidate(context.Background(), []string{"/x"}, "r")
	if err != nil || id != "I1" {
		t.Fatalf("invalidate: %q %v", id, err)
	}
	t0 := time.Now()
	err = cf.Wait(context.Background(), id, 200*time.Millisecond)
	if !errors.Is(err, ErrInvalidationTimeout) || time.Since(t0) > 2*time.Second {
		t.Fatalf("wait: %v after %s", err, time.Since(t0))
	}
}
