package site

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/site/nextgen"
)

func TestTransientErrorsAreRetried(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	st0, _ := newBucket(t, ep)
	u, _ := url.Parse(ep.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	var n, failed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every 4th PUT is throttled, as S3 does under load.
		if r.Method == http.MethodPut && n.Add(1)%4 == 0 {
			failed.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	proxied := ep
	proxied.URL = srv.URL
	st := NewS3Store(awsx.NewS3(proxied), st0.Bucket(), 8, nil)
	dir := t.TempDir()
	ex, err := nextgen.Write(dir, nextgen.Small())
	if err != nil {
		t.Fatal(err)
	}
	sum, _, err := Sync(context.Background(), Options{Dir: dir, Store: st, Out: quiet()})
	if err != nil {
		t.Fatalf("sync through throttling: %v", err)
	}
	if sum.Uploaded != ex.Files || failed.Load() == 0 {
		t.Fatalf("uploaded %d of %d, %d throttled", sum.Uploaded, ex.Files, failed.Load())
	}
	if got := st.Requests().Get("PutObject"); got != ex.Files+1+int(failed.Load()) {
		t.Fatalf("PUT requests %d, want %d files + manifest + %d retries", got, ex.Files, failed.Load())
	}
}

func TestLostManifestIsRebuiltFromMetadata(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	st, _ := newBucket(t, ep)
	ctx := context.Background()
	dir := t.TempDir()
	ex, err := nextgen.Write(dir, nextgen.Small())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Sync(ctx, Options{Dir: dir, Store: st, Out: quiet()}); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, []string{ManifestKey}); err != nil {
		t.Fatal(err)
	}
	puts := st.Requests().Get("PutObject")
	sum, _, err := Sync(ctx, Options{Dir: dir, Store: st, Out: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if sum.ManifestState != "rebuilt" || sum.Uploaded != 0 || st.Requests().Get("HeadObject") != ex.Files {
		t.Fatalf("manifest %s, uploaded %d, HEADs %d", sum.ManifestState, sum.Uploaded, st.Requests().Get("HeadObject"))
	}
	// The rebuilt manifest is written back, so the next sync needs no HEAD.
	if st.Requests().Get("PutObject") != puts+1 {
		t.Fatalf("manifest not written back")
	}
	heads := st.Requests().Get("HeadObject")
	if sum, _, err = Sync(ctx, Options{Dir: dir, Store: st, Out: quiet()}); err != nil || sum.ManifestState != "read" || st.Requests().Get("HeadObject") != heads {
		t.Fatalf("after rebuild: %v %+v", err, sum)
	}
}
