package edge

import (
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/shtetl/zmanim-ops/internal/config"
)

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
		if SitePrivate(uri) {
			// The function's own response, as CloudFront labels one; the bucket is not asked.
			h.Set("X-Cache", "FunctionGeneratedResponse from cloudfront")
			h.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "Not Found\n")
			return
		}
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
