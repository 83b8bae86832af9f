package site

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/shtetl/zmanim-ops/internal/site/nextgen"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// chromium returns the headless browser, skipping (or failing in CI) when it is missing.
func chromium(t *testing.T) string {
	t.Helper()
	p := os.Getenv("ZOPS_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		if testenv.Required() {
			t.Fatalf("browser test needs chromium at %s (apt-get install chromium, or set ZOPS_CHROMIUM)", p)
		}
		t.Skipf("chromium not found at %s", p)
	}
	return p
}

// requestLog records every request of a tab that failed or answered >= 400.
type requestLog struct {
	mu     sync.Mutex
	urls   map[network.RequestID]string
	failed []string
	ok     int
}

func (l *requestLog) listen(t *testing.T, ctx context.Context) {
	l.urls = map[network.RequestID]string{}
	err := chromedp.Listen(ctx, func(ev any) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			l.urls[e.RequestID] = e.Request.URL
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 {
				l.failed = append(l.failed, fmt.Sprintf("%d %s", e.Response.Status, e.Response.URL))
			} else {
				l.ok++
			}
		case *network.EventLoadingFailed:
			l.failed = append(l.failed, fmt.Sprintf("failed (%s) %s", e.ErrorText, l.urls[e.RequestID]))
		}
	})
	if err != nil {
		t.Fatalf("listen to the tab: %v", err)
	}
}

// TestBrowserAcrossDeploy opens a page, deploys a new build, and checks in a real headless
// Chromium that the open page still lazy-loads its old chunk, a newly opened page shows the
// new build and loads the new chunk, and no request of either tab fails. The site is served
// by the twin's edge code (internal/edge, in-process, in front of the test's bucket).
func TestBrowserAcrossDeploy(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	exe := chromium(t)
	st, _ := newBucket(t, ep)
	viewer, cf := startEdge(t, ep, st.Bucket())
	ctx := context.Background()
	clk := newClock()
	spec := nextgen.Small()
	dir1 := t.TempDir()
	ex1, err := nextgen.Write(dir1, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Sync(ctx, Options{Dir: dir1, Store: st, Invalidator: cf, Now: clk.Now, Out: quiet()}); err != nil {
		t.Fatal(err)
	}

	actx, cancelA := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()))
	defer cancelA()
	browser, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	tctx, cancelT := context.WithTimeout(browser, 60*time.Second)
	defer cancelT()

	const page = "/docs/" // page 1 of the export, served through the directory index
	ready := chromedp.Poll[chromedp.Void](`typeof self.__lazy === "function" && self.__page === 1`, chromedp.WithPollingTimeout(15*time.Second))
	var oldTab requestLog
	oldTab.listen(t, tctx)
	if err := chromedp.Do(tctx, chromedp.Navigate(viewer+page), ready); err != nil {
		t.Fatalf("open %s before the deploy: %v", page, err)
	}
	text, err := chromedp.Run(tctx, chromedp.Text("#content"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "build b1") {
		t.Fatalf("before deploy: %q", text)
	}

	// Deploy build 2: every page changes, page 1 gets a new page chunk and a new lazy chunk.
	spec2 := spec
	spec2.Build, spec2.Changed, spec2.Version, spec2.ChangeLazy = "b2", []int{1}, "v2", true
	dir2 := t.TempDir()
	ex2, err := nextgen.Write(dir2, spec2)
	if err != nil {
		t.Fatal(err)
	}
	sum, _, err := Sync(ctx, Options{Dir: dir2, Store: st, Invalidator: cf, Now: clk.Now, Out: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("deploy 2: %s", sum)
	if ex1.LazyChunks[1] == ex2.LazyChunks[1] {
		t.Fatal("fixture: lazy chunk did not change")
	}

	// The page opened before the deploy lazy-loads its (old) chunk.
	lazyLoad := chromedp.Evaluate[string](`self.__lazy(self.__lazySrc)`, chromedp.EvalAwaitPromise)
	lazy, err := chromedp.Run(tctx, lazyLoad)
	if err != nil {
		t.Fatalf("old tab lazy load after deploy: %v", err)
	}
	if lazy != "page 1 lazy base" {
		t.Fatalf("old tab loaded %q, want its own old chunk", lazy)
	}

	// A page opened after the deploy shows build 2 and loads the new chunk.
	newCtx, cancelN := chromedp.NewContext(tctx)
	defer cancelN()
	var newTab requestLog
	newTab.listen(t, newCtx)
	if err := chromedp.Do(newCtx, chromedp.Navigate(viewer+page), ready); err != nil {
		t.Fatalf("open %s after the deploy: %v", page, err)
	}
	if text, err = chromedp.Run(newCtx, chromedp.Text("#content")); err != nil {
		t.Fatal(err)
	}
	if lazy, err = chromedp.Run(newCtx, lazyLoad); err != nil {
		t.Fatalf("new tab lazy load: %v", err)
	}
	if !strings.Contains(text, "build b2") || lazy != "page 1 lazy v2" {
		t.Fatalf("after deploy: content %q, lazy %q", text, lazy)
	}

	for name, l := range map[string]*requestLog{"tab opened before the deploy": &oldTab, "tab opened after": &newTab} {
		l.mu.Lock()
		if len(l.failed) > 0 {
			t.Errorf("%s: failed requests: %v", name, l.failed)
		}
		if l.ok < 6 {
			t.Errorf("%s: only %d successful responses seen; the listener is not working", name, l.ok)
		}
		t.Logf("%s: %d requests, %d failed", name, l.ok, len(l.failed))
		l.mu.Unlock()
	}
}
