package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

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
	for name, v := range q.origin.headers {
		req.Header.Set(name, v)
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
