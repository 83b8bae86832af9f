package gateway

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// issuer is an in-test JWKS server with rotating RSA keys.
type issuer struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []jwk.Key // private keys; the JWKS serves their public halves
	fetches atomic.Int64
	down    atomic.Bool // answer 503, as an issuer that is not up yet
	hang    atomic.Bool // answer only when the client gives up, as an issuer behind a black hole
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	is := &issuer{t: t}
	is.rotate("k1")
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		if is.hang.Load() {
			<-r.Context().Done()
			return
		}
		if is.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		is.mu.Lock()
		set := jwk.NewSet()
		for _, k := range is.keys {
			pub, err := k.PublicKey()
			if err != nil {
				t.Error(err)
			}
			_ = set.AddKey(pub)
		}
		is.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(is.srv.Close)
	return is
}

func newRSA(t *testing.T, kid string) (*rsa.PrivateKey, jwk.Key) {
	t.Helper()
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, kid)
	_ = k.Set(jwk.AlgorithmKey, jwa.RS256())
	return raw, k
}

// rotate adds a key that becomes the signing key.
func (is *issuer) rotate(kid string) jwk.Key {
	_, k := newRSA(is.t, kid)
	is.mu.Lock()
	is.keys = append(is.keys, k)
	is.mu.Unlock()
	return k
}

func (is *issuer) current() jwk.Key {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.keys[len(is.keys)-1]
}

type claims struct {
	iss, aud, sub, scope string
	exp, nbf             time.Time
}

func (is *issuer) good(sub string) claims {
	return claims{iss: is.srv.URL, aud: "zmanim-api", sub: sub, exp: time.Now().Add(time.Hour)}
}

func mint(t *testing.T, c claims, key jwk.Key) string {
	t.Helper()
	b := jwt.NewBuilder().Issuer(c.iss).Audience([]string{c.aud}).Subject(c.sub).IssuedAt(time.Now())
	if !c.exp.IsZero() {
		b = b.Expiration(c.exp)
	}
	if !c.nbf.IsZero() {
		b = b.NotBefore(c.nbf)
	}
	if c.scope != "" {
		b = b.Claim("scope", c.scope)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256(), key))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

type fixture struct {
	gw      *Gateway
	box     *httptest.Server
	iss     *issuer
	last    atomic.Pointer[http.Request]
	boxHits atomic.Int64
	logs    *bytes.Buffer
	logMu   *sync.Mutex
	now     *atomic.Int64 // unix nanos of a frozen gateway clock; 0 follows time.Now
}

type lockedBuf struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

const secret = "s3cr3t-verify"

func newFixture(t *testing.T, edit ...func(*config.API)) *fixture {
	t.Helper()
	f := &fixture{iss: newIssuer(t), logs: &bytes.Buffer{}, logMu: &sync.Mutex{}, now: &atomic.Int64{}}
	f.box = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.boxHits.Add(1)
		f.last.Store(r)
		if r.Header.Get("X-Origin-Verify") != secret {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", "https://evil.example")
		fmt.Fprintf(w, "path=%s query=%s", r.URL.EscapedPath(), r.URL.RawQuery)
	}))
	t.Cleanup(f.box.Close)
	api := config.DefaultAPI(f.iss.srv.URL, "https://zmanim.shtetl.io")
	for _, e := range edit {
		e(&api)
	}
	gw, err := New(Options{
		Config:             api,
		BoxURL:             f.box.URL,
		AccessLog:          lockedBuf{f.logMu, f.logs},
		KeyRefreshInterval: -1,
		Now: func() time.Time {
			if n := f.now.Load(); n != 0 {
				return time.Unix(0, n)
			}
			return time.Now()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	f.gw = gw
	return f
}

// do sends a request as CloudFront does, with the origin-verify header (kv may replace or,
// with an empty value, drop it); doDirect sends it as a client calling the gateway's own
// endpoint would, without it.
func (f *fixture) do(method, target string, kv ...string) *httptest.ResponseRecorder {
	return f.doDirect(method, target, append([]string{"X-Origin-Verify", secret}, kv...)...)
}

func (f *fixture) doDirect(method, target string, kv ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i < len(kv); i += 2 {
		r.Header.Set(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	f.gw.ServeHTTP(w, r)
	return w
}

func TestAuthorizer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := f.iss.current()
	_, stranger := newRSA(t, "k1") // same kid, another key: a forged signature
	good := f.iss.good("user_1")
	expired := good
	expired.exp = time.Now().Add(-time.Minute)
	wrongAud := good
	wrongAud.aud = "someone-else"
	wrongIss := good
	wrongIss.iss = "https://evil.example"
	notYet := good
	notYet.nbf = time.Now().Add(time.Hour)
	noExp := good
	noExp.exp = time.Time{}
	admin := f.iss.good("admin_1")
	admin.scope = "read admin"

	pubPEM := func() []byte {
		var raw rsa.PublicKey
		pub, _ := key.PublicKey()
		if err := jwk.Export(pub, &raw); err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&raw)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	hs256WithPublicKey := func() string {
		tok, _ := jwt.NewBuilder().Issuer(good.iss).Audience([]string{good.aud}).Expiration(good.exp).Build()
		hdr := jws.NewHeaders()
		_ = hdr.Set(jws.KeyIDKey, "k1")
		s, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), pubPEM, jws.WithProtectedHeaders(hdr)))
		if err != nil {
			t.Fatal(err)
		}
		return string(s)
	}()
	algNone := func() string {
		enc := base64.RawURLEncoding.EncodeToString
		payload, _ := json.Marshal(map[string]any{"iss": good.iss, "aud": good.aud, "sub": "x", "exp": good.exp.Unix()})
		return enc([]byte(`{"alg":"none","kid":"k1","typ":"JWT"}`)) + "." + enc(payload) + "."
	}()

	tests := []struct {
		name   string
		path   string
		auth   string
		status int
		body   string
	}{
		{"no token", "/api/publisher/me", "", 401, `{"message":"Unauthorized"}`},
		{"garbage", "/api/publisher/me", "Bearer not.a.jwt", 401, `{"message":"Unauthorized"}`},
		{"good token", "/api/publisher/me", "Bearer " + mint(t, good, key), 200, "path=/api/publisher/me query="},
		{"good token without Bearer prefix", "/api/publisher/me", mint(t, good, key), 200, "path=/api/publisher/me query="},
		{"forged signature", "/api/publisher/me", "Bearer " + mint(t, good, stranger), 401, `{"message":"Unauthorized"}`},
		{"expired", "/api/publisher/me", "Bearer " + mint(t, expired, key), 401, `{"message":"Unauthorized"}`},
		{"not yet valid", "/api/publisher/me", "Bearer " + mint(t, notYet, key), 401, `{"message":"Unauthorized"}`},
		{"no exp", "/api/publisher/me", "Bearer " + mint(t, noExp, key), 401, `{"message":"Unauthorized"}`},
		{"wrong audience", "/api/publisher/me", "Bearer " + mint(t, wrongAud, key), 401, `{"message":"Unauthorized"}`},
		{"wrong issuer", "/api/publisher/me", "Bearer " + mint(t, wrongIss, key), 401, `{"message":"Unauthorized"}`},
		{"alg none", "/api/publisher/me", "Bearer " + algNone, 401, `{"message":"Unauthorized"}`},
		{"HS256 signed with the public key", "/api/publisher/me", "Bearer " + hs256WithPublicKey, 401, `{"message":"Unauthorized"}`},
		{"admin route without scope", "/api/admin/users", "Bearer " + mint(t, good, key), 403, `{"message":"Forbidden"}`},
		{"admin route without token", "/api/admin/users", "", 401, `{"message":"Unauthorized"}`},
		{"admin route with scope", "/api/admin/users", "Bearer " + mint(t, admin, key), 200, "path=/api/admin/users query="},
		{"public route needs no token", "/api/cities?q=jer", "", 200, "path=/api/cities query=q=jer"},
		{"public route ignores a bad token", "/api/cities?q=jer", "Bearer " + algNone, 200, "path=/api/cities query=q=jer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.boxHits.Load()
			var w *httptest.ResponseRecorder
			if tc.auth == "" {
				w = f.do(http.MethodGet, tc.path)
			} else {
				w = f.do(http.MethodGet, tc.path, "Authorization", tc.auth)
			}
			if w.Code != tc.status || w.Body.String() != tc.body {
				t.Fatalf("got %d %q, want %d %q", w.Code, w.Body.String(), tc.status, tc.body)
			}
			if reached := f.boxHits.Load() > before; reached != (tc.status == 200) {
				t.Fatalf("request reached the box: %v", reached)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	old := f.iss.current()
	if w := f.do(http.MethodGet, "/api/publisher/me", "Authorization", "Bearer "+mint(t, f.iss.good("u"), old)); w.Code != 200 {
		t.Fatalf("first token: %d", w.Code)
	}
	fetches := f.iss.fetches.Load()
	// Cached keys: a second token does not fetch the JWKS again.
	f.do(http.MethodGet, "/api/publisher/me", "Authorization", "Bearer "+mint(t, f.iss.good("u"), old))
	if n := f.iss.fetches.Load(); n != fetches {
		t.Fatalf("JWKS fetched %d times for a known kid", n-fetches)
	}
	// The issuer rotates: a token with the new kid makes the gateway refresh once.
	next := f.iss.rotate("k2")
	if w := f.do(http.MethodGet, "/api/publisher/me", "Authorization", "Bearer "+mint(t, f.iss.good("u"), next)); w.Code != 200 {
		t.Fatalf("token with the rotated key: %d %s", w.Code, w.Body)
	}
	if n := f.iss.fetches.Load(); n != fetches+1 {
		t.Fatalf("JWKS fetched %d times after rotation, want 1", n-fetches)
	}
	// A kid the issuer never published stays unauthorized.
	_, unknown := newRSA(t, "k-unknown")
	if w := f.do(http.MethodGet, "/api/publisher/me", "Authorization", "Bearer "+mint(t, f.iss.good("u"), unknown)); w.Code != 401 {
		t.Fatalf("unknown kid: %d", w.Code)
	}
}

func TestThrottling(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(a *config.API) { a.Throttle = config.Throttle{RateLimit: 50, BurstLimit: 100} })
	f.now.Store(time.Now().UnixNano())
	count := func(n int) (ok, limited int) {
		for range n {
			switch w := f.do(http.MethodGet, "/health"); w.Code {
			case 200:
				ok++
			case 429:
				limited++
				if w.Body.String() != `{"message":"Too Many Requests"}` {
					t.Fatalf("429 body %q", w.Body)
				}
			default:
				t.Fatalf("status %d", w.Code)
			}
		}
		return ok, limited
	}
	// The clock stands still: the whole burst passes, the excess is refused.
	tests := []struct {
		name              string
		advance           time.Duration
		n, wantOK, wantNo int
	}{
		{"burst at the limit", 0, 100, 100, 0},
		{"excess over the burst", 0, 30, 0, 30},
		{"one second refills rate tokens", time.Second, 60, 50, 10},
	}
	for _, tc := range tests {
		f.now.Add(int64(tc.advance))
		ok, no := count(tc.n)
		if ok != tc.wantOK || no != tc.wantNo {
			t.Fatalf("%s: %d ok, %d throttled; want %d, %d", tc.name, ok, no, tc.wantOK, tc.wantNo)
		}
	}
}

func TestDefaultThrottleBurst(t *testing.T) {
	t.Parallel()
	f := newFixture(t) // the spec: rate 500, burst 1000
	f.now.Store(time.Now().UnixNano())
	limited := 0
	for range 1000 {
		if f.do(http.MethodGet, "/health").Code == 429 {
			limited++
		}
	}
	if limited != 0 {
		t.Fatalf("%d of a 1000-request burst throttled, want none", limited)
	}
	if w := f.do(http.MethodGet, "/health"); w.Code != 429 {
		t.Fatalf("request 1001 of the burst: %d, want 429", w.Code)
	}
}

func TestIntegrationRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name, target, wantBody string
	}{
		{"query and path intact", "/api/zmanim?lat=31.77&lon=35.21&date=2026-11-27", "path=/api/zmanim query=lat=31.77&lon=35.21&date=2026-11-27"},
		{"escaped path kept", "/api/cities/Tel%20Aviv%2FYafo?q=a%26b", "path=/api/cities/Tel%20Aviv%2FYafo query=q=a%26b"},
		{"health route", "/health", "path=/health query="},
	}
	for _, tc := range tests {
		w := f.do(http.MethodGet, tc.target)
		if w.Code != 200 || w.Body.String() != tc.wantBody {
			t.Fatalf("%s: %d %q, want 200 %q", tc.name, w.Code, w.Body, tc.wantBody)
		}
		if got := f.last.Load().Header.Values("X-Origin-Verify"); len(got) != 1 || got[0] != secret {
			t.Fatalf("%s: box got X-Origin-Verify %q", tc.name, got)
		}
	}
	if w := f.do(http.MethodGet, "/nothing/here"); w.Code != 404 || w.Body.String() != `{"message":"Not Found"}` {
		t.Fatalf("unmatched route: %d %q", w.Code, w.Body)
	}
	if w := f.do(http.MethodPost, "/health"); w.Code != 404 {
		t.Fatalf("POST /health matches only GET /health: %d", w.Code)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	front := "https://zmanim.shtetl.io"
	tests := []struct {
		name       string
		method     string
		headers    []string
		status     int
		allowOrig  string
		allowMeths string
		reachesBox bool
	}{
		{"preflight allowed", http.MethodOptions, []string{"Origin", front, "Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "authorization, x-publisher-id"}, 204, front, "GET,POST,PUT,DELETE,OPTIONS", false},
		{"preflight to a JWT route needs no token", http.MethodOptions, []string{"Origin", front, "Access-Control-Request-Method", "DELETE"}, 204, front, "GET,POST,PUT,DELETE,OPTIONS", false},
		{"preflight from another origin", http.MethodOptions, []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "GET"}, 204, "", "", false},
		{"preflight with a header not allowed", http.MethodOptions, []string{"Origin", front, "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "X-Secret"}, 204, "", "", false},
		{"simple request from the frontend", http.MethodGet, []string{"Origin", front}, 200, front, "", true},
		{"backend CORS headers are replaced", http.MethodGet, []string{"Origin", "https://evil.example"}, 200, "", "", true},
	}
	for _, tc := range tests {
		before := f.boxHits.Load()
		w := f.do(tc.method, "/api/publisher/me", tc.headers...)
		if tc.method == http.MethodGet {
			w = f.do(tc.method, "/api/cities?q=x", tc.headers...)
		}
		if w.Code != tc.status || w.Header().Get("Access-Control-Allow-Origin") != tc.allowOrig || w.Header().Get("Access-Control-Allow-Methods") != tc.allowMeths {
			t.Fatalf("%s: %d allow-origin %q methods %q", tc.name, w.Code, w.Header().Get("Access-Control-Allow-Origin"), w.Header().Get("Access-Control-Allow-Methods"))
		}
		if reached := f.boxHits.Load() > before; reached != tc.reachesBox {
			t.Fatalf("%s: reached box %v", tc.name, reached)
		}
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.do(http.MethodGet, "/api/cities?q=jer")
	f.do(http.MethodGet, "/api/publisher/me")
	f.logMu.Lock()
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	f.logMu.Unlock()
	if len(lines) != 2 {
		t.Fatalf("%d log lines: %q", len(lines), lines)
	}
	want := []map[string]string{
		{"httpMethod": "GET", "routeKey": "ANY /api/{proxy+}", "status": "200", "authorizerError": "-"},
		{"httpMethod": "GET", "routeKey": "ANY /api/publisher/{proxy+}", "status": "401", "integrationLatency": "-"},
	}
	for i, line := range lines {
		var m map[string]string
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i, err, line)
		}
		for k, v := range want[i] {
			if m[k] != v {
				t.Errorf("line %d: %s = %q, want %q", i, k, m[k], v)
			}
		}
		if m["requestId"] == "" || m["requestId"] == "-" || strings.Contains(line, "$context") {
			t.Errorf("line %d not rendered: %s", i, line)
		}
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	api := config.DefaultAPI("http://127.0.0.1:1", "https://zmanim.shtetl.io")
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no box", Options{Config: api}, "box URL"},
	}
	for _, tc := range tests {
		if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestTwinOptions(t *testing.T) {
	t.Parallel()
	env, err := config.LoadWith(config.Options{Env: "local", Path: "/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	o := TwinOptions(env)
	if o.BoxURL != "http://127.0.0.1:17080" || o.Config.Authorizers[config.AuthorizerJWT].Issuer != "http://127.0.0.1:17072" {
		t.Fatalf("options %+v", o)
	}
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	_ = g.Close()
}

func TestRouteSelection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	user := "Bearer " + mint(t, f.iss.good("u"), f.iss.current())
	tests := []struct {
		method, path, auth string
		status             int
		routeKey           string
	}{
		{http.MethodGet, "/health", "", 200, "GET /health"},
		{http.MethodPost, "/health", "", 404, "-"},
		{http.MethodHead, "/health", "", 404, "-"},
		{http.MethodGet, "/api", "", 404, "-"},
		{http.MethodGet, "/other", "", 404, "-"},
		{http.MethodDelete, "/api/cities/1", "", 200, "ANY /api/{proxy+}"},
		{http.MethodGet, "/api/publisher", "", 200, "ANY /api/{proxy+}"}, // {proxy+} needs a segment: the box guards this one
		{http.MethodGet, "/api/publisher/zmanim", "", 401, "ANY /api/publisher/{proxy+}"},
		{http.MethodPut, "/api/publisher/zmanim/1", user, 200, "ANY /api/publisher/{proxy+}"},
		{http.MethodGet, "/api/admin/stats", user, 403, "ANY /api/admin/{proxy+}"},
	}
	for i, tc := range tests {
		var w *httptest.ResponseRecorder
		if tc.auth != "" {
			w = f.do(tc.method, tc.path, "Authorization", tc.auth)
		} else {
			w = f.do(tc.method, tc.path)
		}
		f.logMu.Lock()
		lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
		f.logMu.Unlock()
		var m map[string]string
		if len(lines) != i+1 || json.Unmarshal([]byte(lines[i]), &m) != nil {
			t.Fatalf("%s %s: access log %q", tc.method, tc.path, lines)
		}
		if w.Code != tc.status || m["routeKey"] != tc.routeKey {
			t.Errorf("%s %s: %d route %q; want %d %q", tc.method, tc.path, w.Code, m["routeKey"], tc.status, tc.routeKey)
		}
	}
}

func TestIssuerUnavailableAtStart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.iss.down.Store(true)
	tok := "Bearer " + mint(t, f.iss.good("u"), f.iss.current())
	if w := f.do(http.MethodGet, "/api/publisher/me", "Authorization", tok); w.Code != 401 {
		t.Fatalf("issuer down: %d, want 401", w.Code)
	}
	f.iss.down.Store(false)
	// The failed fetch put the issuer in back-off (1 s after one failure): the next try comes
	// after it, and then the token is accepted.
	f.now.Store(time.Now().Add(2 * time.Second).UnixNano())
	if w := f.do(http.MethodGet, "/api/publisher/me", "Authorization", tok); w.Code != 200 {
		t.Fatalf("issuer back: %d %s, want 200", w.Code, w.Body)
	}
}

// Finding 6 (issue 14): during an issuer outage every request fetched the JWKS itself. Now the
// fetches are single-flight, bounded by a timeout, and backed off after failures: a burst of
// requests costs one fetch, requests during the back-off fail fast without fetching, and the
// gateway recovers once the issuer is back and the back-off has passed.
func TestJWKSOutageIsSingleFlightBackedOffAndRecovers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	t0 := time.Now()
	f.now.Store(t0.UnixNano())
	f.iss.down.Store(true)
	tok := "Bearer " + mint(t, f.iss.good("u"), f.iss.current())
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := f.do(http.MethodGet, "/api/publisher/me", "Authorization", tok); w.Code == 401 {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 50 {
		t.Fatalf("%d of 50 refused during the outage", ok.Load())
	}
	// The cache's own first fetch at registration, plus at most one gated one per failure.
	burst := f.iss.fetches.Load()
	if burst > 3 {
		t.Fatalf("50 requests during the outage made %d JWKS fetches, want at most 3", burst)
	}
	for range 20 {
		f.do(http.MethodGet, "/api/publisher/me", "Authorization", tok)
	}
	if n := f.iss.fetches.Load(); n > burst+1 {
		t.Fatalf("requests inside the back-off fetched %d more times", n-burst)
	}
	// Second failure: the back-off doubles (1 s, then 2 s).
	f.now.Store(t0.Add(1100 * time.Millisecond).UnixNano())
	f.do(http.MethodGet, "/api/publisher/me", "Authorization", tok)
	before := f.iss.fetches.Load()
	f.now.Store(t0.Add(2500 * time.Millisecond).UnixNano())
	f.do(http.MethodGet, "/api/publisher/me", "Authorization", tok)
	if n := f.iss.fetches.Load(); n > before+1 {
		t.Fatalf("fetched %d times 1.4 s after the second failure, want none (back-off 2 s)", n-before)
	}
	f.iss.down.Store(false)
	f.now.Store(t0.Add(10 * time.Second).UnixNano())
	if w := f.do(http.MethodGet, "/api/publisher/me", "Authorization", tok); w.Code != 200 {
		t.Fatalf("issuer back: %d %s, want 200", w.Code, w.Body)
	}
}

// A hanging issuer costs a request the fetch timeout, not the client's patience.
func TestJWKSFetchHasATimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.iss.hang.Store(true)
	for _, a := range f.gw.auth {
		a.gate.timeout = 300 * time.Millisecond
	}
	tok := "Bearer " + mint(t, f.iss.good("u"), f.iss.current())
	start := time.Now()
	if w := f.do(http.MethodGet, "/api/publisher/me", "Authorization", tok); w.Code != 401 {
		t.Fatalf("hanging issuer: %d, want 401", w.Code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the request waited %s for a hanging issuer", d)
	}
	f.iss.hang.Store(false)
}

// Finding 4 (issue 14): the gateway used to add the origin-verify secret itself, so anyone could
// send uncached, database-heavy traffic to its execute-api endpoint around CloudFront. The
// secret now comes from CloudFront (an origin custom header) and the gateway passes it through:
// a request sent to the gateway directly, with no header or a guessed one, reaches the box
// without the secret and is refused.
func TestDirectRequestToGatewayIsRefusedWithoutTheEdgeSecret(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, kv := range [][]string{nil, {"X-Origin-Verify", "guessed"}} {
		w := f.doDirect(http.MethodGet, "/api/cities?q=jer", kv...)
		if w.Code != http.StatusForbidden {
			t.Fatalf("direct request %v: %d %q, want 403", kv, w.Code, w.Body)
		}
		if got := f.last.Load().Header.Get("X-Origin-Verify"); got == secret {
			t.Fatalf("the gateway supplied the secret itself")
		}
	}
}
