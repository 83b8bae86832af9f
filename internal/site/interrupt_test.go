package site

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/site/nextgen"
)

// faultProxy sits in front of the S3 server and, once armed, lets `allow` more PUTs through
// and answers every later PUT with 403 AccessDenied (not retried), as a revoked credential
// or a dying network does mid-deploy.
type faultProxy struct {
	armed atomic.Bool
	allow atomic.Int64
	seen  atomic.Int64
}

func (f *faultProxy) start(t *testing.T, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // cancelled requests are the point of the test
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && f.armed.Load() {
			if f.seen.Add(1) > f.allow.Load() {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusForbidden)
				w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>fault injected</Message></Error>`))
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

var refRE = regexp.MustCompile(`(?:src|href)="/([^"]+)"`)

// checkWhole asserts the bucket serves a whole site: every page's references exist and every
// page is one of the two builds.
func checkWhole(t *testing.T, st *S3Store, ex *nextgen.Export) (newPages int) {
	t.Helper()
	ctx := context.Background()
	listed, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ex.PagePaths {
		body, err := st.Get(ctx, p)
		if err != nil {
			t.Fatalf("page %s missing: %v", p, err)
		}
		for _, m := range refRE.FindAllStringSubmatch(string(body), -1) {
			if _, ok := listed[m[1]]; !ok {
				t.Fatalf("page %s references %s, which the bucket does not hold", p, m[1])
			}
		}
		if strings.Contains(string(body), "build b2") {
			newPages++
		}
	}
	return newPages
}

func TestInterruptedSyncLeavesOldSiteWhole(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	st0, c := newBucket(t, ep)
	var fp faultProxy
	proxied := ep
	proxied.URL = fp.start(t, ep.URL)
	st := NewS3Store(awsx.NewS3(proxied), st0.Bucket(), 8, nil)
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	spec := nextgen.Small()
	ex1, err := nextgen.Write(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Sync(ctx, Options{Dir: dir, Store: st, Now: clk.Now, Out: quiet()}); err != nil {
		t.Fatal(err)
	}
	// Build 2 changes every page (new build id) and every page chunk's neighbours stay.
	dir2 := t.TempDir()
	spec2 := spec
	spec2.Build = "b2"
	spec2.Changed = []int{0, 1, 2, 3, 4, 5}
	spec2.Version, spec2.ChangeLazy = "v2", true
	ex2, err := nextgen.Write(dir2, spec2)
	if err != nil {
		t.Fatal(err)
	}
	for _, allow := range []int64{0, 3, 10, 20} {
		fp.seen.Store(0)
		fp.allow.Store(allow)
		fp.armed.Store(true)
		_, _, err := Sync(ctx, Options{Dir: dir2, Store: st, Now: clk.Now, Out: quiet(), Concurrency: 4})
		if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "run the sync again") {
			t.Fatalf("allow %d: err = %v", allow, err)
		}
		n := checkWhole(t, st0, ex1)
		t.Logf("after failing at PUT %d: %d of %d pages new, site whole", allow, n, len(ex1.PagePaths))
	}
	// Cancelled mid-way (a kill): same guarantee.
	fp.armed.Store(false)
	cctx, cancel := context.WithCancel(ctx)
	cs := NewS3Store(awsx.NewS3(proxied), st0.Bucket(), 4, nil)
	go func() {
		for cs.Requests().Get("PutObject") < 15 {
			if cctx.Err() != nil {
				return
			}
		}
		cancel()
	}()
	_, _, err = Sync(cctx, Options{Dir: dir2, Store: cs, Now: clk.Now, Out: quiet(), Concurrency: 2})
	cancel()
	if err == nil {
		t.Log("sync finished before the cancel landed")
	}
	checkWhole(t, st0, ex1)
	// Rerun finishes: every page is build 2, and the old chunks are still there.
	sum, _, err := Sync(ctx, Options{Dir: dir2, Store: st, Now: clk.Now, Out: quiet()})
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if n := checkWhole(t, st0, ex2); n != len(ex2.PagePaths) {
		t.Fatalf("after rerun %d of %d pages are new", n, len(ex2.PagePaths))
	}
	for _, k := range ex1.LazyChunks[:6] {
		if _, err := st0.Get(ctx, k); err != nil {
			t.Fatalf("old lazy chunk %s gone: %v", k, err)
		}
	}
	_ = c
	t.Logf("rerun: %s", sum)
}
