// Package gateway is the local twin's API Gateway HTTP API: it serves the API described in
// config.API in front of the box. Route selection follows HTTP API rules (config.MatchRoute),
// JWT authorizers verify tokens against the issuer's JWKS with alg pinning, issuer, audience,
// exp and nbf, routes with authorization scopes answer 403 without one, the stage throttles
// with a token bucket (rate and burst), CORS preflights are answered by the gateway itself,
// and integration requests keep the path and query. The origin-verify header is neither added
// nor removed here: CloudFront adds it as an origin custom header, so a request sent straight
// to the gateway reaches the box without it and is refused there (trap 1). Access logs are
// written in the configured $context format.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/time/rate"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// ErrOptions is wrapped by New for an unusable configuration.
var ErrOptions = errors.New("gateway options")

// Options configure a Gateway.
type Options struct {
	Config config.API
	// BoxURL is the integration target (the box's API port), e.g. http://127.0.0.1:17080.
	BoxURL string

	Logger    *slog.Logger // default discards
	AccessLog io.Writer    // one JSON line per request in Config.AccessLogFormat; nil: none

	// APIID and Stage fill $context.apiId and $context.stage (defaults "twinapi", "$default").
	APIID, Stage string
	// DomainName fills $context.domainName; default the request's Host.
	DomainName string
	// KeyRefreshInterval is the least time between JWKS refreshes forced by an unknown kid
	// (default 10 s); tests set a negative value for none.
	KeyRefreshInterval time.Duration
	// IntegrationTimeout is API Gateway's integration timeout (default 30 s).
	IntegrationTimeout time.Duration

	Transport http.RoundTripper // integration transport; default: a clone of http.DefaultTransport keeping 256 idle connections per host
	Now       func() time.Time  // default time.Now
}

// Gateway is an http.Handler for the HTTP API.
type Gateway struct {
	cfg     config.API
	opts    Options
	box     *url.URL
	proxy   *httputil.ReverseProxy
	limiter *rate.Limiter
	auth    map[string]*authorizer
	cache   *jwk.Cache
	stop    context.CancelFunc
	log     *slog.Logger
	logMu   sync.Mutex
	now     func() time.Time
}

// New validates the options and returns the gateway; Close stops its key cache.
func New(opts Options) (*Gateway, error) {
	problems := opts.Config.Validate("api")
	box, err := url.Parse(opts.BoxURL)
	if err != nil || box.Scheme == "" || box.Host == "" {
		problems = append(problems, fmt.Sprintf("box URL %q is not an absolute URL (e.g. http://127.0.0.1:17080)", opts.BoxURL))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w:\n  - %s", ErrOptions, strings.Join(problems, "\n  - "))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.APIID == "" {
		opts.APIID = "twinapi"
	}
	if opts.Stage == "" {
		opts.Stage = "$default"
	}
	if opts.KeyRefreshInterval == 0 {
		opts.KeyRefreshInterval = 10 * time.Second
	}
	if opts.IntegrationTimeout == 0 {
		opts.IntegrationTimeout = 30 * time.Second
	}
	if opts.Transport == nil {
		// Keep connections to the next hop open under load: the default keeps 2 idle per host,
		// which at hundreds of requests per second churns through ephemeral ports.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 512
		t.MaxIdleConnsPerHost = 256
		opts.Transport = t
	}
	ctx, stop := context.WithCancel(context.Background())
	g := &Gateway{
		cfg:     opts.Config,
		opts:    opts,
		box:     box,
		limiter: rate.NewLimiter(rate.Limit(opts.Config.Throttle.RateLimit), opts.Config.Throttle.BurstLimit),
		auth:    map[string]*authorizer{},
		stop:    stop,
		log:     opts.Logger,
		now:     opts.Now,
	}
	if len(opts.Config.Authorizers) > 0 {
		c, err := newJWKCache(ctx)
		if err != nil {
			stop()
			return nil, err
		}
		g.cache = c
		for name, az := range opts.Config.Authorizers {
			g.auth[name] = newAuthorizer(name, az, c, opts.Now, opts.KeyRefreshInterval)
		}
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:      g.rewrite,
		Transport:    opts.Transport,
		ErrorHandler: g.integrationError,
		ModifyResponse: func(resp *http.Response) error {
			// With CORS configured, HTTP API ignores CORS headers from the integration.
			if len(g.cfg.CORS.AllowOrigins) > 0 {
				for name := range resp.Header {
					if strings.HasPrefix(strings.ToLower(name), "access-control-") {
						resp.Header.Del(name)
					}
				}
			}
			return nil
		},
	}
	return g, nil
}

// Close stops the JWKS cache.
func (g *Gateway) Close() error {
	g.stop()
	return nil
}

// reqCtx is the $context of one request.
type reqCtx struct {
	requestID        string
	start            time.Time
	routeKey         string
	status           int
	length           int64
	integrationStart time.Time
	integrationLat   time.Duration
	integrationState int
	authErr          string
	claimsSub        string
	errMessage       string
}

type ctxKey struct{}

// ServeHTTP handles one API request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := &reqCtx{requestID: newRequestID(), start: g.now(), routeKey: "-"}
	rw := &recorder{ResponseWriter: w, status: http.StatusOK}
	defer func() { g.accessLog(r, rc, rw) }()
	rw.Header().Set("Apigw-Requestid", rc.requestID)

	origin := r.Header.Get("Origin")
	corsOK := origin != "" && g.originAllowed(origin)
	if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" && len(g.cfg.CORS.AllowOrigins) > 0 {
		g.preflight(rw, r, corsOK)
		return
	}
	if corsOK {
		g.corsHeaders(rw.Header(), origin)
	}
	if !g.limiter.AllowN(g.now(), 1) {
		g.message(rw, http.StatusTooManyRequests, "Too Many Requests", rc)
		return
	}
	route, _, ok := g.cfg.MatchRoute(r.Method, r.URL.Path)
	if !ok {
		g.message(rw, http.StatusNotFound, "Not Found", rc)
		return
	}
	rc.routeKey = route.Key
	if route.Authorizer != "" {
		a := g.auth[route.Authorizer]
		tok, err := a.verify(r.Context(), bearer(r.Header.Get(identityHeader(a.cfg.IdentitySource))))
		if err != nil {
			rc.authErr = err.Error()
			if errors.Is(err, ErrKeysMissing) {
				g.log.Warn("gateway authorizer cannot fetch keys", "authorizer", a.name, "err", err)
			}
			rw.Header().Set("Www-Authenticate", `Bearer error="invalid_token"`)
			g.message(rw, http.StatusUnauthorized, "Unauthorized", rc)
			return
		}
		rc.claimsSub, _ = tok.Subject()
		if len(route.Scopes) > 0 {
			have := scopes(tok)
			if !slices.ContainsFunc(route.Scopes, func(s string) bool { return slices.Contains(have, s) }) {
				rc.authErr = "token lacks the scopes " + strings.Join(route.Scopes, ", ")
				g.message(rw, http.StatusForbidden, "Forbidden", rc)
				return
			}
		}
	}
	rc.integrationStart = g.now()
	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), ctxKey{}, rc), g.opts.IntegrationTimeout)
	defer cancel()
	g.proxy.ServeHTTP(rw, r.WithContext(ctx))
	rc.integrationLat = g.now().Sub(rc.integrationStart)
	rc.integrationState = rw.status
}

// rewrite builds the integration request: the path and query intact, X-Forwarded-* as HTTP
// API sends them. The origin-verify header passes through untouched: CloudFront adds it, so a
// request sent straight to the gateway's own endpoint arrives at the box without it and is
// refused there before any work (issue 14 finding 4; production's HTTP API does the same).
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(g.box)
	pr.Out.URL.Path = pr.In.URL.Path
	pr.Out.URL.RawPath = pr.In.URL.RawPath
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	pr.SetXForwarded()
	pr.Out.Header.Set("X-Forwarded-Proto", "https")
	pr.Out.Header.Set("X-Forwarded-Port", "443")
	pr.Out.Header.Del("X-Forwarded-Host")
	if rc, ok := pr.In.Context().Value(ctxKey{}).(*reqCtx); ok {
		pr.Out.Header.Set("X-Amzn-Trace-Id", "Root=1-"+strconv.FormatInt(rc.start.Unix(), 16)+"-"+rc.requestID)
	}
}

func (g *Gateway) integrationError(w http.ResponseWriter, r *http.Request, err error) {
	rc, _ := r.Context().Value(ctxKey{}).(*reqCtx)
	g.log.Warn("gateway integration failed", "err", err)
	if errors.Is(err, context.DeadlineExceeded) {
		g.message(w, http.StatusGatewayTimeout, "Service Unavailable", rc)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	g.message(w, http.StatusServiceUnavailable, "Service Unavailable", rc)
}

// message writes API Gateway's JSON error body.
func (g *Gateway) message(w http.ResponseWriter, status int, msg string, rc *reqCtx) {
	if rc != nil {
		rc.errMessage = msg
	}
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (g *Gateway) originAllowed(origin string) bool {
	return slices.ContainsFunc(g.cfg.CORS.AllowOrigins, func(o string) bool { return o == "*" || strings.EqualFold(o, origin) })
}

func (g *Gateway) corsHeaders(h http.Header, origin string) {
	allow := origin
	if slices.Contains(g.cfg.CORS.AllowOrigins, "*") {
		allow = "*"
	}
	h.Set("Access-Control-Allow-Origin", allow)
	h.Add("Vary", "Origin")
}

// preflight answers a CORS preflight the way HTTP API does: the gateway replies itself
// (no route, no authorizer); a disallowed origin, method or header gets no CORS headers.
func (g *Gateway) preflight(w http.ResponseWriter, r *http.Request, originOK bool) {
	c := g.cfg.CORS
	method := r.Header.Get("Access-Control-Request-Method")
	methodOK := slices.ContainsFunc(c.AllowMethods, func(m string) bool { return m == "*" || strings.EqualFold(m, method) })
	headersOK := true
	for _, h := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
		h = strings.TrimSpace(h)
		if h != "" && !slices.ContainsFunc(c.AllowHeaders, func(a string) bool { return a == "*" || strings.EqualFold(a, h) }) {
			headersOK = false
		}
	}
	if originOK && methodOK && headersOK {
		g.corsHeaders(w.Header(), r.Header.Get("Origin"))
		w.Header().Set("Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ","))
		w.Header().Set("Access-Control-Allow-Headers", strings.ToLower(strings.Join(c.AllowHeaders, ",")))
		if c.MaxAgeSeconds > 0 {
			w.Header().Set("Access-Control-Max-Age", strconv.Itoa(c.MaxAgeSeconds))
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

type recorder struct {
	http.ResponseWriter
	status  int
	written int64
	wrote   bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.written += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

var contextVar = regexp.MustCompile(`\$context\.[A-Za-z0-9_.]*[A-Za-z0-9_]`)

// accessLog renders the access-log format: every $context variable is replaced by its value,
// "-" when it has none, as API Gateway does.
func (g *Gateway) accessLog(r *http.Request, rc *reqCtx, rw *recorder) {
	if g.opts.AccessLog == nil || g.cfg.AccessLogFormat == "" {
		return
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	domain := g.opts.DomainName
	if domain == "" {
		domain = r.Host
	}
	vals := map[string]string{
		"requestId":                    rc.requestID,
		"extendedRequestId":            rc.requestID,
		"identity.sourceIp":            ip,
		"identity.userAgent":           r.UserAgent(),
		"requestTime":                  rc.start.UTC().Format("02/Jan/2006:15:04:05 -0700"),
		"requestTimeEpoch":             strconv.FormatInt(rc.start.UnixMilli(), 10),
		"httpMethod":                   r.Method,
		"path":                         r.URL.Path,
		"routeKey":                     rc.routeKey,
		"status":                       strconv.Itoa(rw.status),
		"protocol":                     r.Proto,
		"responseLength":               strconv.FormatInt(rw.written, 10),
		"responseLatency":              strconv.FormatInt(g.now().Sub(rc.start).Milliseconds(), 10),
		"apiId":                        g.opts.APIID,
		"stage":                        g.opts.Stage,
		"domainName":                   domain,
		"error.message":                rc.errMessage,
		"authorizer.error":             rc.authErr,
		"authorizer.claims.sub":        rc.claimsSub,
		"integrationErrorMessage":      "",
		"integration.error":            "",
		"integrationLatency":           "",
		"integrationStatus":            "",
		"integration.status":           "",
		"integration.latency":          "",
		"authorizer.principalId":       rc.claimsSub,
		"identity.caller":              "",
		"identity.user":                "",
		"customDomain.basePathMatched": "",
	}
	if !rc.integrationStart.IsZero() {
		lat := strconv.FormatInt(rc.integrationLat.Milliseconds(), 10)
		st := strconv.Itoa(rc.integrationState)
		vals["integrationLatency"], vals["integration.latency"] = lat, lat
		vals["integrationStatus"], vals["integration.status"] = st, st
	}
	line := contextVar.ReplaceAllStringFunc(g.cfg.AccessLogFormat, func(m string) string {
		v := vals[strings.TrimPrefix(m, "$context.")]
		if v == "" {
			v = "-"
		}
		b, _ := json.Marshal(v)
		return string(b[1 : len(b)-1])
	})
	g.logMu.Lock()
	defer g.logMu.Unlock()
	_, _ = io.WriteString(g.opts.AccessLog, line+"\n")
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
