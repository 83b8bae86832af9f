package site

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/awsx"
)

func sha(b string) string { s := sha256.Sum256([]byte(b)); return hex.EncodeToString(s[:]) }

// The direct PUT against the real S3 server (versitygw): the server accepts its signature for
// keys that need escaping, and what it stored reads back through the SDK exactly as an SDK
// PUT's would (body, content type, cache control, the sha256 metadata, the ETag).
func TestDirectPutStoresWhatTheSDKPathStores(t *testing.T) {
	ep := s3env(t)
	st, c := newBucket(t, ep)
	sdk := NewS3Store(c, st.Bucket(), 4, nil)
	sdk.noDirect = true
	ctx := context.Background()
	keys := []string{"_next/static/chunks/app-3f9a.js", "docs/a b+c/ä(1)!'*~.html", "x=1&y=2;z,@$.txt", "empty.txt"}
	for i, k := range keys {
		body := strings.Repeat("zmanim ", i*100)
		for _, s := range []*S3Store{st, sdk} {
			key := k
			if s == sdk {
				key = "sdk/" + k
			}
			etag, err := s.Put(ctx, Object{Key: key, Body: strings.NewReader(body), Size: int64(len(body)), SHA256: sha(body),
				ContentType: "text/plain; charset=utf-8", CacheControl: "public, max-age=60"})
			if err != nil {
				t.Fatalf("put %q: %v", key, err)
			}
			if etag == "" {
				t.Errorf("put %q: no ETag", key)
			}
		}
		got, out := getBody(t, c, st.Bucket(), k)
		if got != body {
			t.Errorf("%q: body %d bytes, want %d", k, len(got), len(body))
		}
		h, err := st.Head(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := st.Head(ctx, "sdk/"+k)
		if err != nil {
			t.Fatal(err)
		}
		if h != hs {
			t.Errorf("%q: direct PUT stored %+v, the SDK's %+v", k, h, hs)
		}
		if h.SHA256 != sha(body) || aws.ToString(out.CacheControl) != "public, max-age=60" {
			t.Errorf("%q: stored sha256 %q, cache-control %q", k, h.SHA256, aws.ToString(out.CacheControl))
		}
	}
	if n := st.Requests().Get("PutObject"); n != len(keys) {
		t.Errorf("counted %d PutObject requests, want %d", n, len(keys))
	}
}

// A body that does not match its SHA-256 (the file changed after it was hashed) is refused
// by the server, not stored.
func TestDirectPutRefusesABodyThatChanged(t *testing.T) {
	ep := s3env(t)
	st, _ := newBucket(t, ep)
	_, err := st.Put(context.Background(), Object{Key: "a.js", Body: strings.NewReader("new"), Size: 3, SHA256: sha("old")})
	if err == nil {
		t.Fatal("a body that does not match its hash was stored")
	}
	if _, err := st.Head(context.Background(), "a.js"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after the refusal: head = %v, want not found", err)
	}
}

// fakeS3 answers PUTs with the given statuses in turn (then 200), counting them. The direct
// path's retry and error shapes are tested here: versitygw cannot be made to throttle.
func fakeS3(t *testing.T, answers ...string) (*S3Store, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if r.Header.Get("Authorization") == "" || r.Header.Get("X-Amz-Content-Sha256") == "" {
			http.Error(w, "unsigned", http.StatusBadRequest)
			return
		}
		if i < len(answers) {
			code := answers[i]
			w.WriteHeader(map[string]int{"SlowDown": 503, "InternalError": 500, "AccessDenied": 403, "NoSuchBucket": 404}[code])
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>m</Message></Error>`))
			return
		}
		// The answers above went out without reading the body; this one reads it whole and
		// checks it against its hash, as S3 does.
		b, _ := io.ReadAll(r.Body)
		if sha(string(b)) != r.Header.Get("X-Amz-Content-Sha256") {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`<Error><Code>XAmzContentSHA256Mismatch</Code></Error>`))
			return
		}
		w.Header().Set("ETag", `"abc"`)
	}))
	t.Cleanup(srv.Close)
	c := awsx.NewS3(awsx.S3Endpoint{URL: srv.URL, AccessKey: "k", SecretKey: "s", Region: "eu-west-1"})
	st := NewS3Store(c, "b", 4, nil)
	return st, &n
}

func TestDirectPutRetriesThrottlingAndServerErrors(t *testing.T) {
	t.Parallel()
	st, n := fakeS3(t, "SlowDown", "InternalError")
	body := strings.Repeat("a large body, answered before it was read; ", 50_000)
	etag, err := st.Put(context.Background(), Object{Key: "k", Body: strings.NewReader(body), Size: int64(len(body)), SHA256: sha(body)})
	if err != nil || etag != "abc" {
		t.Fatalf("put = %q, %v; want abc after two retries", etag, err)
	}
	if n.Load() != 3 || st.Requests().Get("PutObject") != 3 {
		t.Errorf("%d requests (%d counted), want 3", n.Load(), st.Requests().Get("PutObject"))
	}
}

func TestDirectPutErrorsNameTheProblem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		answer string
		want   error
	}{{"AccessDenied", ErrAccessDenied}, {"NoSuchBucket", ErrNoBucket}} {
		st, n := fakeS3(t, tc.answer, tc.answer, tc.answer)
		_, err := st.Put(context.Background(), Object{Key: "k", Body: strings.NewReader("x"), Size: 1, SHA256: sha("x")})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.answer, err, tc.want)
		}
		if n.Load() != 1 {
			t.Errorf("%s: %d requests, want 1 (not retried)", tc.answer, n.Load())
		}
	}
	st, n := fakeS3(t, "SlowDown", "SlowDown", "SlowDown", "SlowDown", "SlowDown", "SlowDown")
	st.directOnce.Do(func() {
		st.direct = newDirectPut(context.Background(), st.client, st.bucket, st.hc.GetTransport(), nil)
	})
	st.direct.maxBackoff = 1
	_, err := st.Put(context.Background(), Object{Key: "k", Body: strings.NewReader("x"), Size: 1, SHA256: sha("x")})
	if err == nil || !strings.Contains(err.Error(), "SlowDown") || n.Load() != 5 {
		t.Errorf("throttled throughout: err = %v after %d requests, want SlowDown after 5", err, n.Load())
	}
}

// Only a plain SigV4 endpoint takes the direct path.
func TestDirectPutOnlyForPlainSigV4Endpoints(t *testing.T) {
	t.Parallel()
	plain := s3.New(s3.Options{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
	if d := newDirectPut(context.Background(), plain, "zmanim-static-prod", nil, nil); d == nil || d.base != "https://zmanim-static-prod.s3.eu-west-1.amazonaws.com" || d.region != "eu-west-1" {
		t.Errorf("a regional bucket: %+v", d)
	}
	accel := s3.New(s3.Options{Region: "eu-west-1", UseAccelerate: true, Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
	if d := newDirectPut(context.Background(), accel, "b", nil, nil); d != nil {
		t.Errorf("an accelerated bucket took the direct path: %+v", d)
	}
	express := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
	if d := newDirectPut(context.Background(), express, "b--use1-az4--x-s3", nil, nil); d != nil {
		t.Errorf("an S3 Express bucket took the direct path: %+v", d)
	}
}

// TestDirectPutAcceptance runs the direct PUT against real S3: only with ZOPS_AWS_ACCEPTANCE=1,
// AWS credentials and ZOPS_ACCEPTANCE_BUCKET (a scratch bucket it writes and cleans up
// under zops-acceptance/). It proves what versitygw cannot: AWS accepts the signature on a
// virtual-hosted endpoint, over TLS, and stores the same headers and metadata as the SDK.
func TestDirectPutAcceptance(t *testing.T) {
	if os.Getenv("ZOPS_AWS_ACCEPTANCE") != "1" {
		t.Skip("set ZOPS_AWS_ACCEPTANCE=1 (with AWS credentials and ZOPS_ACCEPTANCE_BUCKET) to PUT to real S3")
	}
	bucket := os.Getenv("ZOPS_ACCEPTANCE_BUCKET")
	if bucket == "" {
		t.Fatal("ZOPS_ACCEPTANCE_BUCKET is not set")
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(cfg)
	st, sdk := NewS3Store(c, bucket, 4, nil), NewS3Store(c, bucket, 4, nil)
	sdk.noDirect = true
	body := "acceptance " + time.Now().UTC().Format(time.RFC3339Nano)
	keys := []string{"zops-acceptance/direct/a b+ä(1).txt", "zops-acceptance/sdk/a b+ä(1).txt"}
	defer func() { _ = st.Delete(context.WithoutCancel(ctx), keys) }()
	for i, s := range []*S3Store{st, sdk} {
		if _, err := s.Put(ctx, Object{Key: keys[i], Body: strings.NewReader(body), Size: int64(len(body)), SHA256: sha(body),
			ContentType: "text/plain; charset=utf-8", CacheControl: "no-store"}); err != nil {
			t.Fatal(err)
		}
	}
	if st.direct == nil {
		t.Fatal("the bucket's endpoint did not take the direct path")
	}
	a, err := st.Head(ctx, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Head(ctx, keys[1])
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("direct PUT stored %+v, the SDK's %+v", a, b)
	}
}
