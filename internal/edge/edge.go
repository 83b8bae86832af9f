// Package edge is the local twin's CloudFront: it serves the distribution described in
// config.Edge (behaviors by path pattern, cache policies, Origin Shield, the directory-index
// viewer-request function, the default root object, the viewer protocol policy, the origins'
// custom headers such as the origin-verify secret) in front of
// the twin's API gateway and static bucket, and answers the CloudFront API calls the toolkit
// makes (CreateInvalidation, GetInvalidation, ListInvalidations).
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
//
// Files by concern: edge.go (options, New), edge_request.go (the viewer request path),
// edge_tiers.go (the two cache tiers and collapsed misses), edge_origin.go (origin requests,
// SigV4 signing for the S3 origin), edge_response.go (writing responses and errors),
// cache.go (a tier's entries and invalidation matching), policy.go (what a cache policy
// stores and for how long), latency.go (latency and fault hooks), control.go (the CloudFront
// API subset), twin.go (the twin's options).
package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
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

// OriginEndpoint is where an origin of the description is reachable.
type OriginEndpoint struct {
	// URL is the base URL; the request path is appended to its path. For the static bucket on
	// the twin's S3 server: "http://127.0.0.1:17070/<bucket>" (path-style).
	URL string
	// S3 signs every origin request with SigV4, as CloudFront origin access control does; the
	// S3 server refuses anonymous reads. Required for origins of kind s3.
	S3 *S3Auth
	// Headers are the origin's custom headers (config.Env.OriginCustomHeaders): set on every
	// origin request, replacing a viewer's header of the same name, as CloudFront does.
	Headers map[string]string
}

// S3Auth is the identity the edge reads the static bucket with.
type S3Auth struct {
	Region      string
	Credentials aws.CredentialsProvider
}

// Options configure an Edge.
type Options struct {
	Config  config.Edge
	Origins map[string]OriginEndpoint // by origin id

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
	id      string
	base    *url.URL
	s3      *S3Auth
	headers map[string]string
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
		origins[o.ID] = &origin{id: o.ID, base: u, s3: t.S3, headers: t.Headers}
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
