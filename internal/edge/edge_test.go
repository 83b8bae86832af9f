package edge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"github.com/shtetl/zmanim-ops/internal/config"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is an edge in front of two httptest origins that count what reaches them.
type fixture struct {
	edge       *Edge
	clock      *clock
	apiHits    atomic.Int64
	staticHits atomic.Int64
	lastAPI    atomic.Pointer[http.Request]
	lastStatic atomic.Pointer[http.Request]
	sleeps     *sleepLog
}

type sleepLog struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleepLog) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return nil
}

func (s *sleepLog) take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.d
	s.d = nil
	return d
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}, sleeps: &sleepLog{}}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.apiHits.Add(1)
		f.lastAPI.Store(r)
		switch {
		case r.URL.Path == "/health":
			fmt.Fprint(w, `{"status":"ok"}`)
		case strings.HasPrefix(r.URL.Path, "/api/slow"):
			time.Sleep(150 * time.Millisecond)
			if r.URL.Path == "/api/slow-nostore" {
				w.Header().Set("Cache-Control", "no-store")
			}
			fmt.Fprintf(w, "slow n=%d", n)
		case r.URL.Path == "/api/nostore":
			w.Header().Set("Cache-Control", "no-store")
			fmt.Fprintf(w, "n=%d", n)
		case strings.HasPrefix(r.URL.Path, "/api/publisher/"):
			fmt.Fprintf(w, "user=%s n=%d", r.Header.Get("Authorization"), n)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"path":%q,"query":%q,"auth":%q,"n":%d}`, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), n)
		}
	}))
	t.Cleanup(api.Close)
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.staticHits.Add(1)
		f.lastStatic.Store(r)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDTWIN/") {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, "<Error><Code>AccessDenied</Code></Error>")
			return
		}
		files := map[string]string{"/site/index.html": "home", "/site/docs/index.html": "docs index", "/site/app.js": "js", "/site/.zops/site-manifest.json": `{"files":{}}`}
		body, ok := files[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		etag := fmt.Sprintf(`"%x"`, len(body))
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "max-age=60")
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprint(w, body)
	}))
	t.Cleanup(static.Close)
	e, err := New(Options{
		Config: config.DefaultEdge(),
		Origins: map[string]OriginEndpoint{
			config.OriginIDAPI:    {URL: api.URL},
			config.OriginIDStatic: {URL: static.URL + "/site", S3: &S3Auth{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTWIN", "secret", "")}},
		},
		Now:   f.clock.now,
		Sleep: f.sleeps.sleep,
		Rand:  func() float64 { return 0.5 },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.edge = e
	return f
}

func (f *fixture) get(t *testing.T, target string, kv ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i < len(kv); i += 2 {
		r.Header.Set(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	f.edge.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMissThenHitAgeGrows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	steps := []struct {
		advance time.Duration
		xcache  string
		tier    string
		age     string
	}{
		{0, "Miss from cloudfront", TierOrigin, ""},
		{3 * time.Second, "Hit from cloudfront", TierEdge, "3"},
		{4 * time.Second, "Hit from cloudfront", TierEdge, "7"},
	}
	var first string
	for i, s := range steps {
		f.clock.add(s.advance)
		r := f.get(t, "/api/cities?q=jer")
		b := body(t, r)
		if r.StatusCode != 200 || r.Header.Get("X-Cache") != s.xcache || r.Header.Get(TierHeader) != s.tier || r.Header.Get("Age") != s.age {
			t.Fatalf("step %d: status %d X-Cache %q tier %q Age %q; want %q %q %q", i, r.StatusCode, r.Header.Get("X-Cache"), r.Header.Get(TierHeader), r.Header.Get("Age"), s.xcache, s.tier, s.age)
		}
		if i == 0 {
			first = b
		} else if b != first {
			t.Fatalf("step %d: body %q differs from the cached %q", i, b, first)
		}
		for _, h := range []string{"Via", "X-Amz-Cf-Pop", "X-Amz-Cf-Id"} {
			if r.Header.Get(h) == "" {
				t.Errorf("step %d: missing %s", i, h)
			}
		}
	}
	if n := f.apiHits.Load(); n != 1 {
		t.Fatalf("origin saw %d requests, want 1", n)
	}
	if q := f.lastAPI.Load().URL.RawQuery; q != "q=jer" {
		t.Fatalf("origin query %q, want q=jer (passed through intact)", q)
	}
	// Another query is another object.
	if r := f.get(t, "/api/cities?q=tel"); r.Header.Get("X-Cache") != "Miss from cloudfront" {
		t.Fatalf("a different query string was served from cache: %s", r.Header.Get("X-Cache"))
	}
}

func TestShieldTierAnswersEdgeMiss(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.get(t, "/api/zmanim?lat=31.7&lon=35.2")
	f.clock.add(2 * time.Second)
	f.edge.edge.purge([]string{"/*"}) // as if another edge location asked
	r := f.get(t, "/api/zmanim?lat=31.7&lon=35.2")
	if r.Header.Get(TierHeader) != TierShield || r.Header.Get("X-Cache") != "Miss from cloudfront" || r.Header.Get("Age") != "2" {
		t.Fatalf("tier %q X-Cache %q Age %q; want shield, Miss, 2", r.Header.Get(TierHeader), r.Header.Get("X-Cache"), r.Header.Get("Age"))
	}
	if n := f.apiHits.Load(); n != 1 {
		t.Fatalf("origin saw %d requests, want 1", n)
	}
}

func TestPrivateResponsesNeverShared(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name, path string
		auth       []string
	}{
		{"JWT route forwards each user's token", "/api/publisher/me", []string{"Bearer alice", "Bearer bob", ""}},
		{"admin route", "/api/admin/users", []string{"Bearer admin", ""}},
	}
	for _, tc := range tests {
		var bodies []string
		for _, a := range tc.auth {
			var r *http.Response
			if a == "" {
				r = f.get(t, tc.path)
			} else {
				r = f.get(t, tc.path, "Authorization", a)
			}
			b := body(t, r)
			if r.Header.Get("X-Cache") != "Miss from cloudfront" || r.Header.Get(TierHeader) != TierOrigin {
				t.Fatalf("%s: %s served with X-Cache %q tier %q", tc.name, tc.path, r.Header.Get("X-Cache"), r.Header.Get(TierHeader))
			}
			if got := f.lastAPI.Load().Header.Get("Authorization"); got != a {
				t.Fatalf("%s: origin got Authorization %q, want %q", tc.name, got, a)
			}
			for _, prev := range bodies {
				if prev == b {
					t.Fatalf("%s: user %q got another user's response %q", tc.name, a, b)
				}
			}
			bodies = append(bodies, b)
		}
	}
	// On the caching /api/* behavior Authorization is neither forwarded nor keyed.
	f.get(t, "/api/cities?q=x", "Authorization", "Bearer alice")
	if got := f.lastAPI.Load().Header.Get("Authorization"); got != "" {
		t.Fatalf("cached behavior forwarded Authorization %q", got)
	}
}

func TestNoStoreNotCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i := range 2 {
		r := f.get(t, "/api/nostore")
		if r.Header.Get("X-Cache") != "Miss from cloudfront" {
			t.Fatalf("request %d: X-Cache %q", i, r.Header.Get("X-Cache"))
		}
	}
	if n := f.apiHits.Load(); n != 2 {
		t.Fatalf("origin saw %d requests, want 2", n)
	}
}

func TestStaticDirectoryIndexSigningAndRevalidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		path, wantOrigin, wantBody string
	}{
		{"/docs/", "/site/docs/index.html", "docs index"},
		{"/docs", "/site/docs/index.html", "docs index"},
		{"/", "/site/index.html", "home"},
		{"/app.js?v=3", "/site/app.js", "js"},
	}
	for _, tc := range tests {
		r := f.get(t, tc.path)
		if b := body(t, r); r.StatusCode != 200 || b != tc.wantBody {
			t.Fatalf("%s: %d %q, want 200 %q", tc.path, r.StatusCode, b, tc.wantBody)
		}
		last := f.lastStatic.Load()
		if r.Header.Get("X-Cache") == "Miss from cloudfront" && (last.URL.Path != tc.wantOrigin || last.URL.RawQuery != "") {
			t.Fatalf("%s: origin got %s?%s, want %s without query", tc.path, last.URL.Path, last.URL.RawQuery, tc.wantOrigin)
		}
	}
	// "/docs" and "/docs/" share the object: the second was a hit.
	if n := f.staticHits.Load(); n != 3 {
		t.Fatalf("static origin saw %d requests, want 3", n)
	}
	// Stale after max-age=60: revalidated with If-None-Match, origin answers 304.
	f.clock.add(61 * time.Second)
	r := f.get(t, "/docs/")
	if b := body(t, r); r.Header.Get("X-Cache") != "RefreshHit from cloudfront" || b != "docs index" {
		t.Fatalf("after expiry: X-Cache %q body %q, want RefreshHit and the stored body", r.Header.Get("X-Cache"), b)
	}
	if inm := f.lastStatic.Load().Header.Get("If-None-Match"); inm == "" {
		t.Fatal("revalidation was not conditional")
	}
	if r := f.get(t, "/docs/"); r.Header.Get("X-Cache") != "Hit from cloudfront" {
		t.Fatalf("after revalidation: X-Cache %q, want Hit", r.Header.Get("X-Cache"))
	}
}

func TestViewerProtocolAndMethods(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.get(t, "/docs/?a=1", "X-Forwarded-Proto", "http")
	if r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "https://example.com/docs/?a=1" {
		t.Fatalf("plain HTTP: %d Location %q, want 301 to https", r.StatusCode, r.Header.Get("Location"))
	}
	w := httptest.NewRecorder()
	f.edge.PlainHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusMovedPermanently {
		t.Fatalf("plain listener: %d, want 301", w.Code)
	}
	w = httptest.NewRecorder()
	req0 := httptest.NewRequest(http.MethodGet, "/", nil)
	req0.Header.Set("X-Forwarded-Proto", "https")
	f.edge.PlainHandler().ServeHTTP(w, req0)
	if w.Code != http.StatusOK || w.Body.String() != "home" {
		t.Fatalf("plain listener behind TLS: %d %q, want 200 home", w.Code, w.Body.String())
	}
	w = httptest.NewRecorder()
	f.edge.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/index.html", strings.NewReader("x")))
	if w.Code != http.StatusForbidden || w.Header().Get("X-Cache") != "Error from cloudfront" {
		t.Fatalf("POST to a GET-only behavior: %d %q, want 403 Error", w.Code, w.Header().Get("X-Cache"))
	}
	w = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/api/publisher/zmanim?x=1", strings.NewReader(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	f.edge.ServeHTTP(w, req)
	if w.Code != 200 || f.lastAPI.Load().Method != http.MethodPost || f.lastAPI.Load().URL.RawQuery != "x=1" {
		t.Fatalf("POST to the API: %d, origin %s ?%s", w.Code, f.lastAPI.Load().Method, f.lastAPI.Load().URL.RawQuery)
	}
}

func TestInvalidationThroughCloudFrontAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctl := httptest.NewServer(f.edge.ControlHandler())
	t.Cleanup(ctl.Close)
	cf := cloudfront.New(cloudfront.Options{
		BaseEndpoint: aws.String(ctl.URL),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("twin", "twin", ""),
	})
	warm := func() {
		for _, p := range []string{"/api/cities?q=jer", "/docs/", "/app.js"} {
			f.get(t, p)
			if r := f.get(t, p); r.Header.Get("X-Cache") != "Hit from cloudfront" {
				t.Fatalf("warm %s: %s", p, r.Header.Get("X-Cache"))
			}
		}
	}
	tests := []struct {
		paths  []string
		missed []string
		hit    []string
	}{
		{[]string{"/api/cities"}, []string{"/api/cities?q=jer"}, []string{"/docs/", "/app.js"}},
		{[]string{"/docs/*"}, []string{"/docs/"}, []string{"/api/cities?q=jer", "/app.js"}},
		{[]string{"/*"}, []string{"/api/cities?q=jer", "/docs/", "/app.js"}, nil},
	}
	for i, tc := range tests {
		warm()
		out, err := cf.CreateInvalidation(context.Background(), &cloudfront.CreateInvalidationInput{
			DistributionId: aws.String(f.edge.DistributionID()),
			InvalidationBatch: &cftypes.InvalidationBatch{
				CallerReference: aws.String(fmt.Sprintf("test-%d", i)),
				Paths:           &cftypes.Paths{Quantity: aws.Int32(int32(len(tc.paths))), Items: tc.paths},
			},
		})
		if err != nil {
			t.Fatalf("CreateInvalidation %v: %v", tc.paths, err)
		}
		got, err := cf.GetInvalidation(context.Background(), &cloudfront.GetInvalidationInput{DistributionId: aws.String(f.edge.DistributionID()), Id: out.Invalidation.Id})
		if err != nil || aws.ToString(got.Invalidation.Status) != "Completed" || len(got.Invalidation.InvalidationBatch.Paths.Items) != len(tc.paths) {
			t.Fatalf("GetInvalidation: %+v %v", got, err)
		}
		for _, p := range tc.missed {
			// Both tiers were purged: the origin answers.
			if r := f.get(t, p); r.Header.Get(TierHeader) != TierOrigin {
				t.Errorf("after invalidating %v, %s came from %s (%s)", tc.paths, p, r.Header.Get(TierHeader), r.Header.Get("X-Cache"))
			}
		}
		for _, p := range tc.hit {
			if r := f.get(t, p); r.Header.Get("X-Cache") != "Hit from cloudfront" {
				t.Errorf("invalidating %v also purged %s", tc.paths, p)
			}
		}
	}
	list, err := cf.ListInvalidations(context.Background(), &cloudfront.ListInvalidationsInput{DistributionId: aws.String(f.edge.DistributionID())})
	if err != nil || aws.ToInt32(list.InvalidationList.Quantity) != int32(len(tests)) || list.InvalidationList.Items[0].Status == nil {
		t.Fatalf("ListInvalidations: %+v %v", list, err)
	}
	// The twin answers to any id unless told to be strict.
	if _, err := cf.CreateInvalidation(context.Background(), &cloudfront.CreateInvalidationInput{
		DistributionId:    aws.String("EOTHERID"),
		InvalidationBatch: &cftypes.InvalidationBatch{CallerReference: aws.String("any"), Paths: &cftypes.Paths{Quantity: aws.Int32(1), Items: []string{"/*"}}},
	}); err != nil {
		t.Fatalf("another distribution id: %v", err)
	}
	f.edge.opts.StrictDistributionID = true
	_, err = cf.CreateInvalidation(context.Background(), &cloudfront.CreateInvalidationInput{
		DistributionId:    aws.String("ENOSUCH"),
		InvalidationBatch: &cftypes.InvalidationBatch{CallerReference: aws.String("x"), Paths: &cftypes.Paths{Quantity: aws.Int32(1), Items: []string{"/*"}}},
	})
	var nsd *cftypes.NoSuchDistribution
	if err == nil || !strings.Contains(err.Error(), "NoSuchDistribution") {
		t.Fatalf("unknown distribution: %v (%T), want NoSuchDistribution %T", err, err, nsd)
	}
}

func TestLatencyHooks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ms := func(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }
	l := Latency{
		Enabled:  true,
		Profiles: map[string]Profile{"us-east": {Viewer: Hop{RTT: ms(20)}, Shield: Hop{RTT: ms(70)}, Origin: Hop{RTT: ms(5)}, Pop: "IAD89-C1"}},
	}
	if err := f.edge.SetLatency(l); err != nil {
		t.Fatal(err)
	}
	f.sleeps.take()
	region := []string{RegionHeader, "us-east"}
	want := func(step string, d ...int) {
		t.Helper()
		got := f.sleeps.take()
		if len(got) != len(d) {
			t.Fatalf("%s: slept %v, want %v ms", step, got, d)
		}
		for i := range d {
			if got[i] != time.Duration(d[i])*time.Millisecond {
				t.Fatalf("%s: slept %v, want %v ms", step, got, d)
			}
		}
	}
	r := f.get(t, "/api/cities?q=lat", region...)
	want("origin miss", 20, 70, 5)
	if r.Header.Get("X-Amz-Cf-Pop") != "IAD89-C1" {
		t.Fatalf("pop %q", r.Header.Get("X-Amz-Cf-Pop"))
	}
	f.get(t, "/api/cities?q=lat", region...)
	want("edge hit", 20)
	f.edge.edge.purge([]string{"/*"})
	f.get(t, "/api/cities?q=lat", region...)
	want("shield hit", 20, 70)
	f.get(t, "/api/cities?q=lat")
	want("no region header, no default profile")

	l.Fault = Fault{Rate: 1, Mode: FaultError}
	if err := f.edge.SetLatency(l); err != nil {
		t.Fatal(err)
	}
	r = f.get(t, "/api/cities?q=fault", region...)
	if r.StatusCode != http.StatusBadGateway || r.Header.Get("X-Cache") != "Error from cloudfront" {
		t.Fatalf("fault: %d %q, want 502 Error from cloudfront", r.StatusCode, r.Header.Get("X-Cache"))
	}
	want("fault", 20, 70, 5)
	if r := f.get(t, "/api/cities?q=lat", region...); r.StatusCode != 200 {
		t.Fatalf("an edge hit must not reach the failing origin: %d", r.StatusCode)
	}
	want("edge hit during faults", 20)
	// Through the control endpoint, with durations as strings; off again.
	ctl := httptest.NewServer(f.edge.ControlHandler())
	t.Cleanup(ctl.Close)
	req, _ := http.NewRequest(http.MethodPut, ctl.URL+"/_twin/latency", strings.NewReader(`{"enabled":false,"profiles":{"eu":{"viewer":{"rtt":"15ms"}}},"fault":{"rate":2}}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad fault rate accepted: %v %v", resp, err)
	}
	req, _ = http.NewRequest(http.MethodPut, ctl.URL+"/_twin/latency", strings.NewReader(`{"enabled":false,"profiles":{"eu":{"viewer":{"rtt":"15ms","jitter":"2ms"}}}}`))
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT latency: %v %v", resp, err)
	}
	if got := f.edge.Latency().Profiles["eu"].Viewer.RTT.D(); got != 15*time.Millisecond {
		t.Fatalf("viewer %v, want 15ms", got)
	}
	f.get(t, "/api/cities?q=off", region...)
	want("hooks disabled")
}

func TestNewRejectsMissingOrigins(t *testing.T) {
	t.Parallel()
	_, err := New(Options{Config: config.DefaultEdge(), Origins: map[string]OriginEndpoint{config.OriginIDStatic: {URL: "http://127.0.0.1:1/b"}}})
	if err == nil || !strings.Contains(err.Error(), `origin "api" has no target URL`) || !strings.Contains(err.Error(), "S3") {
		t.Fatalf("got %v", err)
	}
}

func TestConcurrentMissesCollapse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path       string
		wantOrigin int64
	}{
		{"/api/slow?q=1", 1},          // cacheable: one origin request serves all
		{"/api/slow-nostore?q=1", 10}, // not cacheable: each viewer gets its own
	}
	for _, tc := range tests {
		f := newFixture(t)
		var wg sync.WaitGroup
		codes := make([]int, 10)
		for i := range codes {
			wg.Go(func() { codes[i] = f.get(t, tc.path).StatusCode })
		}
		wg.Wait()
		for i, c := range codes {
			if c != 200 {
				t.Fatalf("%s: request %d got %d", tc.path, i, c)
			}
		}
		if n := f.apiHits.Load(); n != tc.wantOrigin {
			t.Errorf("%s: %d origin requests for 10 simultaneous viewers, want %d", tc.path, n, tc.wantOrigin)
		}
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	var slept []time.Duration
	h := &hooks{rand: func() float64 { return 0.75 }, sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
	_ = h.delay(context.Background(), Hop{RTT: Duration(100 * time.Millisecond), Jitter: Duration(20 * time.Millisecond)})
	_ = h.delay(context.Background(), Hop{RTT: Duration(5 * time.Millisecond), Jitter: Duration(20 * time.Millisecond)})
	h.rand = func() float64 { return 0 }
	_ = h.delay(context.Background(), Hop{RTT: Duration(5 * time.Millisecond), Jitter: Duration(20 * time.Millisecond)})
	want := []time.Duration{110 * time.Millisecond, 15 * time.Millisecond}
	if len(slept) != 2 || slept[0] != want[0] || slept[1] != want[1] {
		t.Fatalf("slept %v, want %v (and nothing for a negative delay)", slept, want)
	}
}

func TestTwinOptions(t *testing.T) {
	t.Parallel()
	env, err := config.LoadWith(config.Options{Env: "local", Path: "/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	o := TwinOptions(env, "AK", "SK", "edge-secret")
	if o.Origins[config.OriginIDAPI].URL != "http://127.0.0.1:17073" || o.Origins[config.OriginIDStatic].URL != "http://127.0.0.1:17070/zmanim-static-local" {
		t.Fatalf("origins %+v", o.Origins)
	}
	// CloudFront's origin custom header on the API origin only (issue 14 finding 4).
	if h := o.Origins[config.OriginIDAPI].Headers; len(h) != 1 || h[env.API.OriginVerifyHeader] != "edge-secret" {
		t.Fatalf("API origin headers %v", h)
	}
	if h := o.Origins[config.OriginIDStatic].Headers; len(h) != 0 {
		t.Fatalf("static origin headers %v", h)
	}
	if _, err := New(o); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidationCallerReference(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id1, err := f.edge.Invalidate("ref-1", []string{"/a"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref     string
		paths   []string
		sameID  bool
		wantErr bool
	}{
		{"ref-1", []string{"/a"}, true, false},  // a retry of the same batch
		{"ref-1", []string{"/b"}, false, true},  // another batch under a used reference
		{"ref-2", []string{"/a"}, false, false}, // a new invalidation
		{"ref-3", []string{"a"}, false, true},   // paths start with /
		{"ref-4", []string{"/*/x"}, false, true},
	}
	for _, tc := range tests {
		id, err := f.edge.Invalidate(tc.ref, tc.paths)
		if (err != nil) != tc.wantErr || (err == nil && (id == id1) != tc.sameID) {
			t.Errorf("Invalidate(%s, %v) = %q, %v", tc.ref, tc.paths, id, err)
		}
	}
}

func TestViewerProtocolPolicies(t *testing.T) {
	t.Parallel()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	t.Cleanup(origin.Close)
	tests := []struct {
		policy   string
		proto    string
		status   int
		location string
	}{
		{"redirect-to-https", "http", 301, "https://example.com/api/x?y=1"},
		{"redirect-to-https", "https", 200, ""},
		{"https-only", "http", 403, ""},
		{"https-only", "https", 200, ""},
		{"allow-all", "http", 200, ""},
	}
	for _, tc := range tests {
		cfg := config.DefaultEdge()
		cfg.ViewerProtocolPolicy = tc.policy
		e, err := New(Options{Config: cfg, Origins: map[string]OriginEndpoint{
			config.OriginIDAPI:    {URL: origin.URL},
			config.OriginIDStatic: {URL: origin.URL, S3: &S3Auth{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/api/x?y=1", nil)
		r.Header.Set("X-Forwarded-Proto", tc.proto)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		if w.Code != tc.status || w.Header().Get("Location") != tc.location {
			t.Errorf("%s over %s: %d Location %q; want %d %q", tc.policy, tc.proto, w.Code, w.Header().Get("Location"), tc.status, tc.location)
		}
	}
}

// Each emulated region has its own edge cache in front of the one Origin Shield: an object a
// US viewer fetched is a shield hit, not an edge hit, for the first viewer in Israel.
func TestRegionsHaveTheirOwnEdgeCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ms := func(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }
	if err := f.edge.SetLatency(Latency{Enabled: true, Profiles: map[string]Profile{
		"us-east-1":    {Viewer: Hop{RTT: ms(1)}},
		"il-central-1": {Viewer: Hop{RTT: ms(1)}},
	}}); err != nil {
		t.Fatal(err)
	}
	steps := []struct{ region, tier, xcache string }{
		{"us-east-1", TierOrigin, "Miss from cloudfront"},
		{"us-east-1", TierEdge, "Hit from cloudfront"},
		{"il-central-1", TierShield, "Miss from cloudfront"},
		{"il-central-1", TierEdge, "Hit from cloudfront"},
	}
	for i, s := range steps {
		r := f.get(t, "/api/cities?q=regions", RegionHeader, s.region)
		if r.Header.Get(TierHeader) != s.tier || r.Header.Get("X-Cache") != s.xcache {
			t.Fatalf("step %d (%s): tier %q %q, want %q %q", i, s.region, r.Header.Get(TierHeader), r.Header.Get("X-Cache"), s.tier, s.xcache)
		}
	}
}

// Finding 5 (issue 14): the static bucket holds the deploy's own records under .zops/ (the site
// manifest: every file with its hash and deploy time). The viewer-request function answers 404
// for that prefix, however the path is spelled, and the bucket is never asked.
func TestSiteRecordsAreNotServed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, p := range []string{"/.zops/site-manifest.json", "/%2Ezops/site-manifest.json", "/%2ezops/site-manifest.json", "/.zops/", "/.zops"} {
		before := f.staticHits.Load()
		r := f.get(t, p)
		b := body(t, r)
		if r.StatusCode != http.StatusNotFound || strings.Contains(b, "files") {
			t.Fatalf("%s: %d %q, want 404 without the manifest", p, r.StatusCode, b)
		}
		if f.staticHits.Load() != before {
			t.Fatalf("%s reached the bucket", p)
		}
	}
	if r := f.get(t, "/app.js"); r.StatusCode != 200 {
		t.Fatalf("/app.js: %d", r.StatusCode)
	}
}
