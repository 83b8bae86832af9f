// Package edge is the local twin's CloudFront: it serves the distribution described in
// config.Edge (behaviors by path pattern, cache policies, Origin Shield, the directory-index
// viewer-request function, the default root object, the viewer protocol policy) in front of
// the twin's API gateway and static bucket, and answers the CloudFront API calls the toolkit
// makes (CreateInvalidation, GetInvalidation).
//
// Two cache tiers stand for the edge location and Origin Shield. A request is answered by the
// edge when it holds a fresh copy (X-Cache "Hit from cloudfront"), else by the shield ("Miss
// from cloudfront" with an Age), else by the origin ("Miss from cloudfront" without Age); a
// stale copy is revalidated with a conditional GET ("RefreshHit from cloudfront" on 304). The
// twin-only header X-Twin-Cache-Tier (edge, shield, origin) says which tier answered.
//
// Viewer protocol: the Edge handler stands for CloudFront's HTTPS listener, because a TLS
// listener on loopback would only make every client skip certificate checks; a request on it
// is taken as HTTPS unless it says "X-Forwarded-Proto: http". PlainHandler stands for the
// port-80 listener: its requests are plain HTTP unless they say "X-Forwarded-Proto: https".
// Plain-HTTP requests get what the policy says (301 to https for redirect-to-https, 403 for
// https-only), as a plain-HTTP viewer would from CloudFront.
package edge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// Defaults of the twin distribution.
const (
	TwinDistributionID = config.TwinDistributionID
	TwinDomainName     = "d2twinzmanim01.cloudfront.net"
	TwinPop            = "TWN1-P1"
	// TierHeader is the twin-only response header naming the tier that answered.
	TierHeader = "X-Twin-Cache-Tier"
)

// Tiers reported in TierHeader.
const (
	TierEdge   = "edge"
	TierShield = "shield"
	TierOrigin = "origin"
)

// ErrOptions is wrapped by New for an unusable configuration.
var ErrOptions = errors.New("edge options")

// OriginTarget is where an origin of the description is reachable.
type OriginTarget struct {
	// URL is the base URL; the request path is appended to its path. For the static bucket on
	// the twin's S3 server: "http://127.0.0.1:17070/<bucket>" (path-style).
	URL string
	// S3 signs every origin request with SigV4, as CloudFront origin access control does; the
	// S3 server refuses anonymous reads. Required for origins of kind s3.
	S3 *S3Auth
}

// S3Auth is the identity the edge reads the static bucket with.
type S3Auth struct {
	Region      string
	Credentials aws.CredentialsProvider
}

// Options configure an Edge.
type Options struct {
	Config  config.Edge
	Origins map[string]OriginTarget // by origin id

	DistributionID string // default TwinDistributionID
	// StrictDistributionID makes the control API answer NoSuchDistribution for any other id;
	// by default the twin answers to every id, so clients configured with another one work.
	StrictDistributionID bool
	DomainName           string // the distribution's domain, used in Via; default TwinDomainName
	Pop                  string // X-Amz-Cf-Pop when no latency profile names one; default TwinPop

	// Latency hooks, off unless Latency.Enabled; changeable at run time through the control
	// handler (PUT /_twin/latency).
	Latency Latency
	// ErrorCachingMinTTL defaults to DefaultErrorCachingMinTTL; a negative value disables it.
	ErrorCachingMinTTL time.Duration
	// MaxEntries bounds each tier (default 200,000 objects); a full tier evicts some.
	MaxEntries int
	// MaxObjectSize is the largest response body stored (default 64 MiB); larger ones are
	// served but not cached.
	MaxObjectSize int64
	// OriginTimeout bounds one origin request (CloudFront's origin response timeout, 30 s).
	OriginTimeout time.Duration

	Transport http.RoundTripper // default: a clone of http.DefaultTransport keeping 256 idle connections per host
	Now       func() time.Time  // default time.Now (tests move the clock)
	Logger    *slog.Logger      // default discards
	// Rand and Sleep drive the latency hooks; tests replace them.
	Rand  func() float64
	Sleep func(ctx context.Context, d time.Duration) error
}

type origin struct {
	id   string
	base *url.URL
	s3   *S3Auth
}

// Edge is an http.Handler for viewers; ControlHandler serves the CloudFront API subset.
type Edge struct {
	cfg     config.Edge
	opts    Options
	origins map[string]*origin
	edge    *tier
	shield  *tier
	hooks   *hooks
	signer  *v4.Signer
	client  *http.Client
	log     *slog.Logger

	flMu    sync.Mutex
	flights map[string]*flight

	invMu sync.Mutex
	invs  map[string]*invalidation
	order []string

	originRequests atomic.Int64
}

// New checks the options against the description and returns the edge.
func New(opts Options) (*Edge, error) {
	var problems []string
	if p := opts.Config.Validate("edge"); len(p) > 0 {
		problems = append(problems, p...)
	}
	origins := map[string]*origin{}
	for _, o := range opts.Config.Origins {
		t, ok := opts.Origins[o.ID]
		if !ok {
			problems = append(problems, fmt.Sprintf("origin %q has no target URL; pass it in Options.Origins", o.ID))
			continue
		}
		u, err := url.Parse(t.URL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			problems = append(problems, fmt.Sprintf("origin %q: %q is not an absolute URL", o.ID, t.URL))
			continue
		}
		if o.Kind == config.OriginS3 && (t.S3 == nil || t.S3.Credentials == nil || t.S3.Region == "") {
			problems = append(problems, fmt.Sprintf("origin %q is an S3 bucket: give Options.Origins[%q].S3 a region and credentials (the bucket refuses anonymous reads, as with origin access control)", o.ID, o.ID))
		}
		origins[o.ID] = &origin{id: o.ID, base: u, s3: t.S3}
	}
	if err := opts.Latency.Validate(); err != nil {
		problems = append(problems, "latency: "+err.Error())
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w:\n  - %s", ErrOptions, strings.Join(problems, "\n  - "))
	}
	if opts.DistributionID == "" {
		opts.DistributionID = TwinDistributionID
	}
	if opts.DomainName == "" {
		opts.DomainName = TwinDomainName
	}
	if opts.Pop == "" {
		opts.Pop = TwinPop
	}
	if opts.ErrorCachingMinTTL == 0 {
		opts.ErrorCachingMinTTL = DefaultErrorCachingMinTTL
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = 200_000
	}
	if opts.MaxObjectSize == 0 {
		opts.MaxObjectSize = 64 << 20
	}
	if opts.OriginTimeout == 0 {
		opts.OriginTimeout = 30 * time.Second
	}
	if opts.Transport == nil {
		// Keep connections to the next hop open under load: the default keeps 2 idle per host,
		// which at hundreds of requests per second churns through ephemeral ports.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 512
		t.MaxIdleConnsPerHost = 256
		opts.Transport = t
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Rand == nil {
		opts.Rand = defaultRand
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	return &Edge{
		cfg:     opts.Config,
		opts:    opts,
		origins: origins,
		edge:    newTier(TierEdge, opts.MaxEntries),
		shield:  newTier(TierShield, opts.MaxEntries),
		hooks:   &hooks{cfg: opts.Latency, rand: opts.Rand, sleep: opts.Sleep},
		signer:  v4.NewSigner(),
		client: &http.Client{
			Transport: opts.Transport,
			Timeout:   opts.OriginTimeout,
			// CloudFront passes origin redirects to the viewer; it never follows them.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log:     opts.Logger,
		invs:    map[string]*invalidation{},
		flights: map[string]*flight{},
	}, nil
}

// DistributionID is the id the control API answers to.
func (e *Edge) DistributionID() string { return e.opts.DistributionID }

// OriginRequests counts the requests sent to origins so far.
func (e *Edge) OriginRequests() int64 { return e.originRequests.Load() }

// SetLatency replaces the latency configuration.
func (e *Edge) SetLatency(l Latency) error { return e.hooks.set(l) }

// Latency returns the current latency configuration.
func (e *Edge) Latency() Latency { return e.hooks.get() }

// ServeHTTP serves a viewer request arriving on the HTTPS listener (or plain HTTP when it
// says so with X-Forwarded-Proto: http).
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	proto := "https"
	if r.TLS == nil && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "http") {
		proto = "http"
	}
	e.serve(w, r, proto)
}

// PlainHandler serves a plain-HTTP (port 80) listener: requests get the viewer protocol
// policy applied (301 to https for redirect-to-https) unless they carry
// "X-Forwarded-Proto: https", which marks TLS terminated in front of the twin.
func (e *Edge) PlainHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto := "http"
		if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
			proto = "https"
		}
		e.serve(w, r, proto)
	})
}

// request is one viewer request on its way through the tiers.
type request struct {
	r        *http.Request
	behavior config.Behavior
	policy   config.CachePolicy
	origin   *origin
	uri      string
	cfID     string
	profile  Profile
	fault    Fault
	hooked   bool
	// pop names the edge location when latency hooks place the viewer in a region: each
	// region has its own edge cache in front of the one shared Origin Shield, as CloudFront
	// does, so a region's first request for an object another region fetched is a shield hit.
	pop string
}

func (e *Edge) serve(w http.ResponseWriter, r *http.Request, proto string) {
	ctx := r.Context()
	q := &request{r: r, cfID: newCfID()}
	q.profile, q.fault, q.hooked = e.hooks.profile(r)
	if q.hooked {
		q.pop = r.Header.Get(RegionHeader)
	}
	// The viewer's round trip to the edge location, paid by every response.
	if q.hooked {
		if err := e.hooks.delay(ctx, q.profile.Viewer); err != nil {
			return
		}
	}
	h := w.Header()
	pop := e.opts.Pop
	if q.profile.Pop != "" {
		pop = q.profile.Pop
	}
	h.Set("Via", "1.1 "+e.opts.DomainName+" (CloudFront)")
	h.Set("X-Amz-Cf-Pop", pop)
	h.Set("X-Amz-Cf-Id", q.cfID)

	if proto == "http" {
		switch e.cfg.ViewerProtocolPolicy {
		case "redirect-to-https":
			h.Set("Location", "https://"+r.Host+r.URL.RequestURI())
			h.Set("X-Cache", "Redirect from cloudfront")
			w.WriteHeader(http.StatusMovedPermanently)
			return
		case "https-only":
			e.fail(w, http.StatusForbidden, "this distribution only accepts HTTPS")
			return
		}
	}

	uri := r.URL.Path
	b, ok := e.cfg.Match(uri)
	if !ok {
		e.fail(w, http.StatusForbidden, "no behavior matches "+uri)
		return
	}
	if !slices.Contains(b.AllowedMethods, r.Method) {
		e.fail(w, http.StatusForbidden, "this distribution is not configured to allow the HTTP request method "+r.Method+" for "+b.PathPattern)
		return
	}
	if uri == "/" && e.cfg.DefaultRootObject != "" {
		uri = "/" + strings.TrimPrefix(e.cfg.DefaultRootObject, "/")
	}
	if b.ViewerRequestFunction == config.FunctionDirectoryIndex {
		uri = DirectoryIndex(uri)
	}
	q.behavior, q.uri = b, uri
	q.policy = e.cfg.CachePolicies[b.CachePolicy]
	q.origin = e.origins[b.Origin]

	cacheable := (r.Method == http.MethodGet || r.Method == http.MethodHead) && q.policy.Caches() && !b.ForwardAllViewerHeaders
	if !cacheable {
		e.passThrough(w, q)
		return
	}
	res, err := e.lookup(ctx, q, KeyFor(q.policy, r, uri))
	if err != nil {
		e.originError(w, err)
		return
	}
	e.write(w, r, res)
}

// result is a response on its way back to the viewer.
type result struct {
	ent    *entry
	tier   string // which tier answered
	xcache string // Hit | RefreshHit | Miss
	store  bool   // the edge may keep it
}

// lookup answers a cacheable request from the edge tier, the shield tier or the origin.
func (e *Edge) lookup(ctx context.Context, q *request, key CacheKey) (result, error) {
	k := key.String()
	ek := k
	if q.pop != "" {
		ek = q.pop + "|" + k
	}
	stale := e.edge.get(ek)
	if stale != nil && stale.fresh(e.opts.Now()) {
		return result{ent: stale, tier: TierEdge, xcache: "Hit"}, nil
	}
	// Edge miss: the edge location asks Origin Shield.
	if q.hooked {
		if err := e.hooks.delay(ctx, q.profile.Shield); err != nil {
			return result{}, err
		}
	}
	res, err := e.fromShield(ctx, q, k, stale)
	if err != nil {
		return result{}, err
	}
	res.xcache = "Miss"
	if stale != nil && stale.hasValidators() && sameRepresentation(stale, res.ent) {
		res.xcache = "RefreshHit"
	}
	if res.store {
		e.edge.put(ek, res.ent)
	}
	return res, nil
}

// flight is one origin fetch that concurrent requests for the same key wait for, as
// CloudFront collapses simultaneous requests for an object into one origin request.
type flight struct {
	done chan struct{}
	res  result
	err  error
}

func (e *Edge) fromShield(ctx context.Context, q *request, k string, edgeStale *entry) (result, error) {
	sh := e.shield.get(k)
	if sh != nil && sh.fresh(e.opts.Now()) {
		return result{ent: sh, tier: TierShield, store: true}, nil
	}
	e.flMu.Lock()
	if f, ok := e.flights[k]; ok {
		e.flMu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return result{}, ctx.Err()
		}
		if f.err == nil && f.res.store {
			return result{ent: f.res.ent, tier: TierOrigin, store: true}, nil
		}
		// Not cacheable: every viewer gets its own origin response.
		return e.fetchOrigin(ctx, q, k, sh, edgeStale)
	}
	f := &flight{done: make(chan struct{})}
	e.flights[k] = f
	e.flMu.Unlock()
	f.res, f.err = e.fetchOrigin(ctx, q, k, sh, edgeStale)
	e.flMu.Lock()
	delete(e.flights, k)
	e.flMu.Unlock()
	close(f.done)
	return f.res, f.err
}

// fetchOrigin asks the origin, conditionally when a stale copy has validators, and stores
// what the policy allows in the shield tier.
func (e *Edge) fetchOrigin(ctx context.Context, q *request, k string, sh, edgeStale *entry) (result, error) {
	cond := sh
	if cond == nil || !cond.hasValidators() {
		cond = edgeStale
	}
	if cond != nil && !cond.hasValidators() {
		cond = nil
	}
	resp, err := e.toOrigin(ctx, q, http.MethodGet, cond)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	now := e.opts.Now()
	if resp.StatusCode == http.StatusNotModified && cond != nil {
		// Revalidated: the stored body stays, headers the 304 carries replace the old ones.
		h := cond.header.Clone()
		for name, v := range resp.Header {
			if !isHopByHop(name) {
				h[name] = v
			}
		}
		f := ResponseFreshness(q.policy, cond.status, h, now, e.opts.ErrorCachingMinTTL)
		ent := &entry{path: q.uri, status: cond.status, header: h, body: cond.body, date: now, expires: now.Add(f.TTL)}
		if f.Store {
			e.shield.put(k, ent)
		}
		return result{ent: ent, tier: TierOrigin, store: f.Store}, nil
	}
	// Read it all: an object above MaxObjectSize is served whole but not stored.
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, fmt.Errorf("read origin %s response: %w", q.origin.id, err)
	}
	h := http.Header{}
	for name, v := range resp.Header {
		if !isHopByHop(name) {
			h[name] = v
		}
	}
	date := now
	if a, err := strconv.Atoi(resp.Header.Get("Age")); err == nil && a > 0 {
		date = now.Add(-time.Duration(a) * time.Second)
	}
	h.Del("Age")
	f := ResponseFreshness(q.policy, resp.StatusCode, h, now, e.opts.ErrorCachingMinTTL)
	ent := &entry{path: q.uri, status: resp.StatusCode, header: h, body: body, date: date, expires: now.Add(f.TTL)}
	store := f.Store && int64(len(body)) <= e.opts.MaxObjectSize
	if store {
		e.shield.put(k, ent)
	}
	e.log.Debug("edge origin fetch", "uri", q.uri, "status", resp.StatusCode, "store", store, "ttl", f.TTL, "reason", f.Reason)
	return result{ent: ent, tier: TierOrigin, store: store}, nil
}

func sameRepresentation(a, b *entry) bool {
	if a.status != b.status {
		return false
	}
	if et := a.header.Get("ETag"); et != "" {
		return et == b.header.Get("ETag")
	}
	lm := a.header.Get("Last-Modified")
	return lm != "" && lm == b.header.Get("Last-Modified") && bytes.Equal(a.body, b.body)
}

// errFault is an injected origin failure.
var errFault = errors.New("injected origin fault")

// toOrigin sends the request from Origin Shield to the origin, paying that hop's delay and
// any injected fault; cond carries the validators of a stale copy.
func (e *Edge) toOrigin(ctx context.Context, q *request, method string, cond *entry) (*http.Response, error) {
	if q.hooked {
		if err := e.hooks.delay(ctx, q.profile.Origin); err != nil {
			return nil, err
		}
		if q.fault.Rate > 0 && e.opts.Rand() < q.fault.Rate {
			switch q.fault.Mode {
			case FaultSlow:
				if err := e.opts.Sleep(ctx, q.fault.Delay.D()); err != nil {
					return nil, err
				}
			default:
				return nil, errFault
			}
		}
	}
	req, err := e.originRequest(ctx, q, method)
	if err != nil {
		return nil, err
	}
	if cond != nil {
		cond.conditional(req.Header)
	}
	if q.origin.s3 != nil {
		if err := e.sign(ctx, req, q.origin.s3); err != nil {
			return nil, err
		}
	}
	e.originRequests.Add(1)
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("origin %s: %w", q.origin.id, err)
	}
	return resp, nil
}

// originRequest builds what CloudFront sends to the origin: the path after the viewer-request
// function, the query strings, headers and cookies of the cache policy, or every viewer header
// but Host when the behavior forwards all viewer headers.
func (e *Edge) originRequest(ctx context.Context, q *request, method string) (*http.Request, error) {
	r := q.r
	u := *q.origin.base
	u.Path = strings.TrimSuffix(q.origin.base.Path, "/") + q.uri
	u.RawPath = ""
	u.RawQuery = PolicyQuery(q.policy, r.URL.RawQuery)
	if q.behavior.ForwardAllViewerHeaders {
		u.RawQuery = r.URL.RawQuery
	}
	withBody := method != http.MethodGet && method != http.MethodHead
	var body io.Reader
	if withBody {
		body = r.Body
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("build origin request: %w", err)
	}
	if withBody {
		req.ContentLength = r.ContentLength
	}
	if q.behavior.ForwardAllViewerHeaders {
		for name, v := range r.Header {
			if !isHopByHop(name) && !strings.EqualFold(name, RegionHeader) {
				req.Header[name] = slices.Clone(v)
			}
		}
	} else {
		for _, name := range q.policy.Headers {
			if v := r.Header.Values(name); len(v) > 0 {
				req.Header[http.CanonicalHeaderKey(name)] = slices.Clone(v)
			}
		}
		if q.policy.Cookies == "all" {
			if v := r.Header.Values("Cookie"); len(v) > 0 {
				req.Header["Cookie"] = slices.Clone(v)
			}
		}
		if withBody {
			for _, name := range []string{"Content-Type", "Content-Encoding"} {
				if v := r.Header.Get(name); v != "" {
					req.Header.Set(name, v)
				}
			}
		}
		req.Header.Set("User-Agent", "Amazon CloudFront")
	}
	req.Header.Set("Via", "1.1 "+e.opts.DomainName+" (CloudFront)")
	req.Header.Set("X-Amz-Cf-Id", q.cfID)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header.Get("X-Forwarded-For"); prior != "" && q.behavior.ForwardAllViewerHeaders {
			ip = prior + ", " + ip
		}
		req.Header.Set("X-Forwarded-For", ip)
	}
	return req, nil
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// sign signs an origin request for S3 (origin access control).
func (e *Edge) sign(ctx context.Context, req *http.Request, a *S3Auth) error {
	creds, err := a.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("origin access control: get credentials: %w", err)
	}
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	err = e.signer.SignHTTP(ctx, creds, req, emptySHA256, "s3", a.Region, e.opts.Now(), func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = true
	})
	if err != nil {
		return fmt.Errorf("origin access control: sign request: %w", err)
	}
	return nil
}

// passThrough forwards a request that is never cached (other methods, a CachingDisabled
// policy, behaviors forwarding all viewer headers) and streams the response back.
func (e *Edge) passThrough(w http.ResponseWriter, q *request) {
	ctx := q.r.Context()
	if q.hooked {
		if err := e.hooks.delay(ctx, q.profile.Shield); err != nil {
			return
		}
	}
	resp, err := e.toOrigin(ctx, q, q.r.Method, nil)
	if err != nil {
		e.originError(w, err)
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	for name, v := range resp.Header {
		if !isHopByHop(name) {
			h[name] = v
		}
	}
	h.Set("X-Cache", "Miss from cloudfront")
	h.Set(TierHeader, TierOrigin)
	w.WriteHeader(resp.StatusCode)
	if q.r.Method != http.MethodHead {
		_, _ = io.Copy(w, resp.Body)
	}
}

// write sends a buffered response to the viewer.
func (e *Edge) write(w http.ResponseWriter, r *http.Request, res result) {
	h := w.Header()
	for name, v := range res.ent.header {
		h[name] = v
	}
	if res.tier != TierOrigin {
		h.Set("Age", strconv.FormatInt(res.ent.age(e.opts.Now()), 10))
	}
	h.Set("X-Cache", res.xcache+" from cloudfront")
	h.Set(TierHeader, res.tier)
	if et := res.ent.header.Get("ETag"); et != "" && res.ent.status == http.StatusOK && r.Header.Get("If-None-Match") == et {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(res.ent.body)))
	w.WriteHeader(res.ent.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(res.ent.body)
	}
}

func (e *Edge) originError(w http.ResponseWriter, err error) {
	if errors.Is(err, context.Canceled) {
		return // the viewer went away
	}
	status := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusGatewayTimeout
	}
	e.log.Warn("edge origin request failed", "err", err)
	e.fail(w, status, "CloudFront could not connect to the origin")
}

// fail answers with an error generated by the edge itself.
func (e *Edge) fail(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("X-Cache", "Error from cloudfront")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length"}

func isHopByHop(name string) bool {
	return slices.ContainsFunc(hopByHop, func(h string) bool { return strings.EqualFold(h, name) })
}

func newCfID() string {
	b := make([]byte, 42)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:56]
}
