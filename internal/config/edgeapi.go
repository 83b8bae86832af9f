package config

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Edge describes the CloudFront distribution. The twin's edge serves it and the CDK CDN
// stack renders it; a test in each checks they agree with this description.
type Edge struct {
	// OriginShieldRegion is the regional cache tier in front of every origin.
	OriginShieldRegion string `yaml:"origin_shield_region"`
	// DefaultRootObject is served for "/".
	DefaultRootObject string `yaml:"default_root_object"`
	// ViewerProtocolPolicy: redirect-to-https, https-only or allow-all.
	ViewerProtocolPolicy string `yaml:"viewer_protocol_policy"`
	PriceClass           string `yaml:"price_class"`
	// Origins by id.
	Origins []Origin `yaml:"origins"`
	// Behaviors in precedence order: the first whose path pattern matches serves the request.
	// The last one must be the default behavior, pattern "*".
	Behaviors []Behavior `yaml:"behaviors"`
	// CachePolicies by name.
	CachePolicies map[string]CachePolicy `yaml:"cache_policies"`
}

// Origin kinds.
const (
	OriginAPI = "api" // the API Gateway HTTP API (custom origin, HTTPS)
	OriginS3  = "s3"  // the static bucket through origin access control
)

// Origin is one CloudFront origin.
type Origin struct {
	ID   string `yaml:"id"`
	Kind string `yaml:"kind"` // api | s3
}

// SitePrivateDir holds the site deploy's own records in the static bucket (manifest, lock,
// pending invalidations). They are not part of the site: the directory-index function answers
// 404 for /SitePrivateDir and everything below it, so the edge never serves them.
const SitePrivateDir = ".zops"

// Viewer-request functions the edge knows.
const (
	FunctionDirectoryIndex = "directory-index" // "/docs/" -> "/docs/index.html", "/docs" -> "/docs/index.html"; 404 for SitePrivateDir
)

// Behavior routes a path pattern to an origin with a cache policy.
type Behavior struct {
	PathPattern    string   `yaml:"path_pattern"`
	Origin         string   `yaml:"origin"`
	CachePolicy    string   `yaml:"cache_policy"`
	AllowedMethods []string `yaml:"allowed_methods"`
	// ForwardAllViewerHeaders sends every viewer header (Authorization included) to the origin
	// without making it part of the cache key (the AllViewerExceptHostHeader origin request
	// policy). Only allowed with a policy that never caches.
	ForwardAllViewerHeaders bool   `yaml:"forward_all_viewer_headers"`
	ViewerRequestFunction   string `yaml:"viewer_request_function"`
}

// CachePolicy mirrors a CloudFront cache policy.
type CachePolicy struct {
	MinTTL     int `yaml:"min_ttl"`     // seconds
	DefaultTTL int `yaml:"default_ttl"` // seconds, when the origin sends no Cache-Control
	MaxTTL     int `yaml:"max_ttl"`     // seconds
	// Headers, query strings and cookies in the cache key (and so forwarded to the origin).
	Headers      []string `yaml:"headers"`
	QueryStrings string   `yaml:"query_strings"` // none | all | allow
	QueryAllow   []string `yaml:"query_allow"`
	Cookies      string   `yaml:"cookies"` // none | all
	Compress     bool     `yaml:"compress"`
}

// Caches reports whether the policy can ever store a response.
func (c CachePolicy) Caches() bool { return c.MaxTTL > 0 }

// KeysOn reports whether header h is part of the cache key.
func (c CachePolicy) KeysOn(h string) bool {
	return slices.ContainsFunc(c.Headers, func(x string) bool { return strings.EqualFold(x, h) })
}

// API describes the API Gateway HTTP API in front of the box.
type API struct {
	Routes      []Route                  `yaml:"routes"`
	Authorizers map[string]JWTAuthorizer `yaml:"authorizers"`
	Throttle    Throttle                 `yaml:"throttle"`
	CORS        CORS                     `yaml:"cors"`
	// OriginVerifyHeader carries the secret from SSM (ParamOriginVerify): CloudFront adds it to
	// every request to the API origin (an origin custom header, replacing any viewer copy), API
	// Gateway passes it through, and the box refuses requests without it. So neither the box
	// (trap 1) nor the gateway's own execute-api endpoint (issue 14 finding 4) serves a request
	// that did not come through CloudFront. See Env.OriginCustomHeaders.
	OriginVerifyHeader string `yaml:"origin_verify_header"`
	// AccessLogFormat is the $context-variable JSON written per request.
	AccessLogFormat string `yaml:"access_log_format"`
}

// Integrations a route can have.
const (
	IntegrationBox = "box" // HTTP proxy to the box's API port
)

// Route is one HTTP API route.
type Route struct {
	// Key is "METHOD /path", with ANY as a method and {name} / {proxy+} path parameters.
	Key         string   `yaml:"key"`
	Integration string   `yaml:"integration"`
	Authorizer  string   `yaml:"authorizer"` // "" for public routes
	Scopes      []string `yaml:"scopes"`     // authorization scopes the token must hold
}

// Method and path of the route key.
func (r Route) Split() (method, path string) {
	m, p, _ := strings.Cut(r.Key, " ")
	return m, p
}

// JWTAuthorizer is an HTTP API JWT authorizer (Clerk).
type JWTAuthorizer struct {
	Issuer   string   `yaml:"issuer"`
	Audience []string `yaml:"audience"`
	// JWKSURI defaults to Issuer + "/.well-known/jwks.json".
	JWKSURI        string   `yaml:"jwks_uri"`
	IdentitySource string   `yaml:"identity_source"`
	Algorithms     []string `yaml:"algorithms"` // pinned; RS256 for Clerk
}

// JWKS returns the key set URL.
func (a JWTAuthorizer) JWKS() string {
	if a.JWKSURI != "" {
		return a.JWKSURI
	}
	return strings.TrimSuffix(a.Issuer, "/") + "/.well-known/jwks.json"
}

// Throttle is the stage's default route throttling.
type Throttle struct {
	RateLimit  float64 `yaml:"rate_limit"`  // steady requests per second
	BurstLimit int     `yaml:"burst_limit"` // bucket size
}

// CORS is the HTTP API CORS configuration.
type CORS struct {
	AllowOrigins  []string `yaml:"allow_origins"`
	AllowMethods  []string `yaml:"allow_methods"`
	AllowHeaders  []string `yaml:"allow_headers"`
	MaxAgeSeconds int      `yaml:"max_age_seconds"`
}

// Names of the default cache policies.
const (
	PolicyAPI      = "api"      // 1 hour, the spec's API policy
	PolicyNoCache  = "no-cache" // CachingDisabled, for JWT routes and /health
	PolicyStatic   = "static"   // 1 year max, honours the object's Cache-Control
	AuthorizerJWT  = "clerk"    // the default JWT authorizer
	ScopeAdmin     = "admin"    // scope required by /api/admin routes
	OriginIDAPI    = "api"      // origin id of the HTTP API
	OriginIDStatic = "static"   // origin id of the static bucket
)

// DefaultEdge is the spec's distribution with the traps handled: JWT routes and /health are
// never cached (trap 2), and "/docs/" is rewritten to "/docs/index.html" (trap 5).
func DefaultEdge() Edge {
	get := []string{http.MethodGet, http.MethodHead, http.MethodOptions}
	all := []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete}
	return Edge{
		OriginShieldRegion:   "eu-west-1",
		DefaultRootObject:    "index.html",
		ViewerProtocolPolicy: "redirect-to-https",
		PriceClass:           "PriceClass_100",
		Origins: []Origin{
			{ID: OriginIDAPI, Kind: OriginAPI},
			{ID: OriginIDStatic, Kind: OriginS3},
		},
		Behaviors: []Behavior{
			{PathPattern: "/health", Origin: OriginIDAPI, CachePolicy: PolicyNoCache, AllowedMethods: get, ForwardAllViewerHeaders: true},
			{PathPattern: "/api/publisher/*", Origin: OriginIDAPI, CachePolicy: PolicyNoCache, AllowedMethods: all, ForwardAllViewerHeaders: true},
			{PathPattern: "/api/admin/*", Origin: OriginIDAPI, CachePolicy: PolicyNoCache, AllowedMethods: all, ForwardAllViewerHeaders: true},
			{PathPattern: "/api/*", Origin: OriginIDAPI, CachePolicy: PolicyAPI, AllowedMethods: all},
			{PathPattern: "*", Origin: OriginIDStatic, CachePolicy: PolicyStatic, AllowedMethods: get, ViewerRequestFunction: FunctionDirectoryIndex},
		},
		CachePolicies: map[string]CachePolicy{
			PolicyAPI:     {MinTTL: 0, DefaultTTL: 3600, MaxTTL: 3600, QueryStrings: "all", Cookies: "none", Compress: true},
			PolicyNoCache: {MinTTL: 0, DefaultTTL: 0, MaxTTL: 0, QueryStrings: "none", Cookies: "none"},
			PolicyStatic:  {MinTTL: 0, DefaultTTL: 86400, MaxTTL: 31536000, QueryStrings: "none", Cookies: "none", Compress: true},
		},
	}
}

// DefaultAPI is the spec's HTTP API: public /api routes, JWT on /api/publisher, JWT with the
// admin scope on /api/admin, throttling 500/s burst 1000, CORS for the frontend.
func DefaultAPI(issuer, frontend string) API {
	return API{
		Routes: []Route{
			{Key: "GET /health", Integration: IntegrationBox},
			{Key: "ANY /api/{proxy+}", Integration: IntegrationBox},
			{Key: "ANY /api/publisher/{proxy+}", Integration: IntegrationBox, Authorizer: AuthorizerJWT},
			{Key: "ANY /api/admin/{proxy+}", Integration: IntegrationBox, Authorizer: AuthorizerJWT, Scopes: []string{ScopeAdmin}},
		},
		Authorizers: map[string]JWTAuthorizer{
			AuthorizerJWT: {
				Issuer:         issuer,
				Audience:       []string{"zmanim-api"},
				IdentitySource: "$request.header.Authorization",
				Algorithms:     []string{"RS256"},
			},
		},
		Throttle: Throttle{RateLimit: 500, BurstLimit: 1000},
		CORS: CORS{
			AllowOrigins:  []string{frontend},
			AllowMethods:  []string{"GET", "POST", "PUT", "DELETE", "OPTIONS"},
			AllowHeaders:  []string{"Authorization", "Content-Type", "X-Publisher-Id"},
			MaxAgeSeconds: 600,
		},
		OriginVerifyHeader: "X-Origin-Verify",
		AccessLogFormat:    `{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime","httpMethod":"$context.httpMethod","routeKey":"$context.routeKey","status":"$context.status","protocol":"$context.protocol","responseLength":"$context.responseLength","integrationLatency":"$context.integrationLatency","authorizerError":"$context.authorizer.error"}`,
	}
}

// Validate checks the edge description on its own.
func (e Edge) Validate(env string) []string {
	var p []string
	add := func(field, format string, a ...any) {
		p = append(p, fmt.Sprintf("environments.%s.edge.%s: %s", env, field, fmt.Sprintf(format, a...)))
	}
	switch e.ViewerProtocolPolicy {
	case "redirect-to-https", "https-only", "allow-all":
	default:
		add("viewer_protocol_policy", "%q: use redirect-to-https, https-only or allow-all", e.ViewerProtocolPolicy)
	}
	origins := map[string]bool{}
	for i, o := range e.Origins {
		if o.Kind != OriginAPI && o.Kind != OriginS3 {
			add(fmt.Sprintf("origins[%d].kind", i), "%q: use %q or %q", o.Kind, OriginAPI, OriginS3)
		}
		if origins[o.ID] {
			add(fmt.Sprintf("origins[%d].id", i), "%q is used twice", o.ID)
		}
		origins[o.ID] = true
	}
	for name, c := range e.CachePolicies {
		f := "cache_policies." + name
		if c.MinTTL < 0 || c.DefaultTTL < 0 || c.MaxTTL < 0 {
			add(f, "TTLs cannot be negative")
		}
		if c.MinTTL > c.MaxTTL {
			add(f, "min_ttl %d is greater than max_ttl %d; CloudFront requires min <= default <= max", c.MinTTL, c.MaxTTL)
		} else if c.DefaultTTL < c.MinTTL || c.DefaultTTL > c.MaxTTL {
			add(f, "default_ttl %d is outside [min_ttl %d, max_ttl %d]", c.DefaultTTL, c.MinTTL, c.MaxTTL)
		}
		switch c.QueryStrings {
		case "none", "all", "allow":
		default:
			add(f+".query_strings", "%q: use none, all or allow", c.QueryStrings)
		}
		switch c.Cookies {
		case "none", "all":
		default:
			add(f+".cookies", "%q: use none or all", c.Cookies)
		}
	}
	if len(e.Behaviors) == 0 || e.Behaviors[len(e.Behaviors)-1].PathPattern != "*" {
		add("behaviors", "the last behavior must be the default one with path_pattern \"*\"")
	}
	for i, b := range e.Behaviors {
		f := fmt.Sprintf("behaviors[%d] (%s)", i, b.PathPattern)
		if !origins[b.Origin] {
			add(f+".origin", "%q is not one of the origins", b.Origin)
		}
		c, ok := e.CachePolicies[b.CachePolicy]
		if !ok {
			add(f+".cache_policy", "%q is not one of the cache_policies", b.CachePolicy)
		} else if b.ForwardAllViewerHeaders && c.Caches() {
			add(f+".forward_all_viewer_headers", "forwarding viewer headers (Authorization) to the origin with a caching policy (%s) lets one viewer's response be served to another; use a policy with max_ttl 0", b.CachePolicy)
		}
		if !allowedMethodSet(b.AllowedMethods) {
			add(f+".allowed_methods", "%v: CloudFront allows exactly [GET, HEAD], [GET, HEAD, OPTIONS] or [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]", b.AllowedMethods)
		}
		if b.ViewerRequestFunction != "" && b.ViewerRequestFunction != FunctionDirectoryIndex {
			add(f+".viewer_request_function", "%q is not a known function; use %q", b.ViewerRequestFunction, FunctionDirectoryIndex)
		}
		for j := 0; j < i; j++ {
			prev := e.Behaviors[j]
			if prev.PathPattern == b.PathPattern {
				add(f, "path pattern repeats behaviors[%d]; CloudFront would never use this one", j)
			} else if b.PathPattern != "*" && Shadows(prev.PathPattern, b.PathPattern) {
				add(f, "is shadowed by behaviors[%d] (%s), which matches every path it matches and comes first; put the more specific pattern first", j, prev.PathPattern)
			}
		}
	}
	return p
}

// allowedMethodSet reports whether methods is one of the three sets CloudFront accepts.
func allowedMethodSet(methods []string) bool {
	got := slices.Clone(methods)
	slices.Sort(got)
	for _, set := range [][]string{
		{"GET", "HEAD"},
		{"GET", "HEAD", "OPTIONS"},
		{"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"},
	} {
		if slices.Equal(got, set) {
			return true
		}
	}
	return false
}

// Validate checks the API description on its own.
func (a API) Validate(env string) []string {
	var p []string
	add := func(field, format string, args ...any) {
		p = append(p, fmt.Sprintf("environments.%s.api.%s: %s", env, field, fmt.Sprintf(format, args...)))
	}
	keys := map[string]bool{}
	for i, r := range a.Routes {
		f := fmt.Sprintf("routes[%d] (%s)", i, r.Key)
		m, path := r.Split()
		if !slices.Contains([]string{"ANY", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, m) || !strings.HasPrefix(path, "/") {
			add(f+".key", "write the route key as \"METHOD /path\", e.g. \"ANY /api/{proxy+}\"")
		}
		if strings.Contains(path, "{proxy+}") && !strings.HasSuffix(path, "/{proxy+}") {
			add(f+".key", "a greedy {proxy+} parameter must be the last path segment")
		}
		if keys[r.Key] {
			add(f+".key", "route key is used twice")
		}
		keys[r.Key] = true
		if r.Integration != IntegrationBox {
			add(f+".integration", "%q: every route needs an integration; use %q", r.Integration, IntegrationBox)
		}
		if r.Authorizer != "" {
			if _, ok := a.Authorizers[r.Authorizer]; !ok {
				add(f+".authorizer", "%q is not one of the authorizers", r.Authorizer)
			}
		} else if len(r.Scopes) > 0 {
			add(f+".scopes", "scopes need an authorizer on the route")
		}
	}
	for name, az := range a.Authorizers {
		f := "authorizers." + name
		if !strings.HasPrefix(az.Issuer, "https://") && !strings.HasPrefix(az.Issuer, "http://127.0.0.1") && !strings.HasPrefix(az.Issuer, "http://localhost") {
			add(f+".issuer", "%q: an issuer must be an https URL (plain http only on loopback for the twin)", az.Issuer)
		}
		if h, ok := strings.CutPrefix(az.IdentitySource, "$request.header."); !ok || h == "" {
			add(f+".identity_source", "%q: write the header the token comes in, e.g. $request.header.Authorization", az.IdentitySource)
		}
		if len(az.Audience) == 0 {
			add(f+".audience", "missing; list the audiences tokens must carry")
		}
		if len(az.Algorithms) == 0 {
			add(f+".algorithms", "missing; pin the signing algorithms, e.g. [RS256]")
		}
		for _, alg := range az.Algorithms {
			if strings.EqualFold(alg, "none") || strings.HasPrefix(alg, "HS") {
				add(f+".algorithms", "%q is not allowed; pin asymmetric algorithms such as RS256", alg)
			}
		}
	}
	if a.Throttle.RateLimit <= 0 || a.Throttle.BurstLimit <= 0 {
		add("throttle", "rate_limit and burst_limit must be positive (the spec: 500 and 1000)")
	}
	if a.OriginVerifyHeader == "" {
		add("origin_verify_header", "missing; the box refuses requests without it (e.g. X-Origin-Verify)")
	}
	if len(a.CORS.AllowOrigins) == 0 {
		add("cors.allow_origins", "missing; list the frontend origin, e.g. https://zmanim.shtetl.io")
	}
	return p
}

// ValidateEdgeAPI checks the edge and the API together: a response of a route that needs a
// token must never be cached where another viewer could receive it (trap 2).
func ValidateEdgeAPI(e *Env) []string {
	var p []string
	for _, r := range e.API.Routes {
		if r.Authorizer == "" {
			continue
		}
		_, path := r.Split()
		sample := SamplePath(path)
		b, ok := e.Edge.Match(sample)
		if !ok {
			continue
		}
		c := e.Edge.CachePolicies[b.CachePolicy]
		if c.Caches() && !c.KeysOn("Authorization") {
			p = append(p, fmt.Sprintf("environments.%s.edge: route %q needs a token but %s is served by behavior %q with cache policy %q (max_ttl %d) that does not key on Authorization: one user's response could be served to another; add a behavior for it with the %s policy before %q",
				e.Name, r.Key, sample, b.PathPattern, b.CachePolicy, c.MaxTTL, PolicyNoCache, b.PathPattern))
		}
	}
	return p
}

// Match returns the first behavior whose pattern matches path.
func (e Edge) Match(path string) (Behavior, bool) {
	for _, b := range e.Behaviors {
		if MatchPattern(b.PathPattern, path) {
			return b, true
		}
	}
	return Behavior{}, false
}

// Origin returns the origin with the id.
func (e Edge) Origin(id string) (Origin, bool) {
	for _, o := range e.Origins {
		if o.ID == id {
			return o, true
		}
	}
	return Origin{}, false
}

// MatchPattern reports whether a CloudFront path pattern matches a path: '*' matches any run
// of characters including '/', '?' exactly one character; matching is case-sensitive. A
// pattern without a leading slash is anchored at the root as CloudFront does.
func MatchPattern(pattern, path string) bool {
	if pattern != "*" && !strings.HasPrefix(pattern, "/") {
		pattern = "/" + pattern
	}
	return globMatch(pattern, path)
}

func globMatch(p, s string) bool {
	// Iterative wildcard match with backtracking to the last '*'.
	var pi, si, star, mark = 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// Shadows reports whether pattern a matches every path that pattern b matches, so that b
// placed after a is never used. It decides the forms CloudFront users write: "*", a literal
// path, and a literal prefix followed by one trailing "*"; for other forms it answers false.
func Shadows(a, b string) bool {
	if a == "*" || a == b {
		return true
	}
	prefix, ok := strings.CutSuffix(a, "*")
	if !ok || strings.ContainsAny(prefix, "*?") {
		return false
	}
	bLiteral := b
	if i := strings.IndexAny(b, "*?"); i >= 0 {
		bLiteral = b[:i]
	}
	return strings.HasPrefix(bLiteral, prefix)
}

// SamplePath turns a route path into a concrete path it matches: {proxy+} becomes "sample/x",
// {param} becomes "sample".
func SamplePath(route string) string {
	segs := strings.Split(route, "/")
	for i, s := range segs {
		switch {
		case s == "{proxy+}":
			segs[i] = "sample/x"
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			segs[i] = "sample"
		}
	}
	return strings.Join(segs, "/")
}

// MatchRoute returns the route that API Gateway selects for method and path: exact paths
// beat parameterized ones, more literal segments beat fewer, {proxy+} is greedy and matches
// one or more segments; a route with method ANY loses to one naming the method.
func (a API) MatchRoute(method, path string) (Route, map[string]string, bool) {
	var best Route
	var bestParams map[string]string
	bestScore := -1
	for _, r := range a.Routes {
		m, rp := r.Split()
		if m != "ANY" && m != method {
			continue
		}
		params, score, ok := matchRoutePath(rp, path)
		if !ok {
			continue
		}
		score *= 2
		if m != "ANY" {
			score++
		}
		if score > bestScore {
			best, bestParams, bestScore = r, params, score
		}
	}
	return best, bestParams, bestScore >= 0
}

func matchRoutePath(route, path string) (map[string]string, int, bool) {
	rs := strings.Split(strings.Trim(route, "/"), "/")
	ps := strings.Split(strings.Trim(path, "/"), "/")
	params := map[string]string{}
	score := 0
	for i, r := range rs {
		if r == "{proxy+}" {
			if i >= len(ps) || strings.Join(ps[i:], "/") == "" {
				return nil, 0, false
			}
			params["proxy"] = strings.Join(ps[i:], "/")
			return params, score*100 + i, true
		}
		if i >= len(ps) {
			return nil, 0, false
		}
		if strings.HasPrefix(r, "{") && strings.HasSuffix(r, "}") {
			params[strings.Trim(r, "{}")] = ps[i]
			continue
		}
		if r != ps[i] {
			return nil, 0, false
		}
		score++
	}
	if len(rs) != len(ps) {
		return nil, 0, false
	}
	// An exact-length match without a greedy parameter is the most specific kind.
	return params, 10000 + score*100 + len(rs), true
}

// OriginCustomHeaders are the headers CloudFront adds to every request to origin o (origin
// custom headers: CloudFront replaces a viewer's header of the same name). The API origin
// carries API.OriginVerifyHeader with the origin-verify secret; API Gateway passes it through to
// the box. Both renderings use this: the CDK distribution (with an SSM reference as secret) and
// the twin's edge (with the twin's secret).
func (e *Env) OriginCustomHeaders(o Origin, secret string) map[string]string {
	if o.Kind != OriginAPI || e.API.OriginVerifyHeader == "" {
		return nil
	}
	return map[string]string{e.API.OriginVerifyHeader: secret}
}
