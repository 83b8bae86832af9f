package site

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyauth "github.com/aws/smithy-go/auth"
	"github.com/aws/smithy-go/encoding/httpbinding"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// directPut sends a PutObject as one SigV4-signed HTTP request on the store's connection
// pool, with the endpoint the SDK resolves for the bucket (once) and the SDK's signer. A
// cold sync is thousands of small PUTs, and the SDK's generic path (some forty middlewares,
// two endpoint-ruleset evaluations per request, their allocations and the garbage
// collection they cause) cost about as much CPU per object as the S3 server spent storing
// it: bench:site measured the client's CPU nearly halved this way. Everything else (lists,
// gets, deletes, and a PUT without a precomputed SHA-256) stays on the SDK.
//
// Only plain SigV4 endpoints take this path; a bucket whose endpoint wants another auth
// scheme (S3 Express, multi-region access points) or extra headers keeps the SDK's.
type directPut struct {
	rt          http.RoundTripper // the store's transport settings, a pool of its own
	creds       aws.CredentialsProvider
	signer      *v4.Signer
	base        string // the bucket's endpoint: scheme, host and (path-style) /bucket
	region      string // signing region
	maxAttempts int
	maxBackoff  time.Duration
	count       func() // one call per attempt, like the SDK path's request counter
}

// newDirectPut resolves bucket's endpoint with client's options; nil when the direct path
// does not apply (the SDK path is used then). Requests go straight to rt: no redirect is
// followed (the SDK does not follow S3's either; net/http would turn a redirected PUT into
// a GET).
func newDirectPut(ctx context.Context, client *s3.Client, bucket string, rt http.RoundTripper, count func()) *directPut {
	o := client.Options()
	if o.EndpointResolverV2 == nil || o.Credentials == nil || o.UseAccelerate || o.UseARNRegion {
		return nil
	}
	e, err := o.EndpointResolverV2.ResolveEndpoint(ctx, s3.EndpointParameters{
		Bucket: aws.String(bucket), Region: aws.String(o.Region), Endpoint: o.BaseEndpoint,
		ForcePathStyle: aws.Bool(o.UsePathStyle), UseFIPS: aws.Bool(false), UseDualStack: aws.Bool(false), Accelerate: aws.Bool(false),
	})
	if err != nil || len(e.Headers) > 0 || e.URI.RawQuery != "" {
		return nil
	}
	region := o.Region
	if opts, ok := smithyauth.GetAuthOptions(&e.Properties); ok {
		for _, a := range opts {
			// The ruleset names the scheme "sigv4" (sigv4a, sigv4-s3express otherwise).
			if a.SchemeID != "sigv4" && a.SchemeID != smithyauth.SchemeIDSigV4 {
				return nil
			}
			if n, ok := smithyhttp.GetSigV4SigningName(&a.SignerProperties); ok && n != "s3" {
				return nil
			}
			if r, ok := smithyhttp.GetSigV4SigningRegion(&a.SignerProperties); ok && r != "" {
				region = r
			}
		}
	}
	return &directPut{
		rt: rt, creds: o.Credentials, region: region, count: count,
		base:        strings.TrimSuffix(e.URI.String(), "/"),
		signer:      v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true }),
		maxAttempts: 5, maxBackoff: 2 * time.Second,
	}
}

// put uploads o (o.SHA256 set, o.Body an io.ReaderAt) and returns its ETag. Failures the
// SDK would retry (a connection error, 5xx, 429, SlowDown, RequestTimeout) are retried with
// jittered exponential backoff. Each attempt reads the body through a reader of its own
// (io.ReaderAt), because net/http may still be reading an attempt's body after RoundTrip
// returned (an early error answer): a shared offset rewound for the retry would race it.
func (d *directPut) put(ctx context.Context, o Object) (string, error) {
	ra, ok := o.Body.(io.ReaderAt)
	if !ok {
		return "", errors.New("direct put: the body is not an io.ReaderAt")
	}
	creds, err := d.creds.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("operation error S3: PutObject: credentials: %w", err)
	}
	url := d.base + "/" + httpbinding.EscapePath(o.Key, false)
	for attempt := 1; ; attempt++ {
		etag, err, retry := d.once(ctx, creds, url, o, ra)
		if err == nil {
			return etag, nil
		}
		if !retry || attempt >= d.maxAttempts || ctx.Err() != nil {
			return "", err
		}
		backoff := min(d.maxBackoff, 50*time.Millisecond<<(attempt-1))
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		}
	}
}

func (d *directPut) once(ctx context.Context, creds aws.Credentials, url string, o Object, ra io.ReaderAt) (string, error, bool) {
	var body io.ReadCloser = http.NoBody
	if o.Size > 0 {
		body = io.NopCloser(io.NewSectionReader(ra, 0, o.Size))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, body)
	if err != nil {
		return "", err, false
	}
	req.ContentLength = o.Size
	h := req.Header
	if o.ContentType != "" {
		h.Set("Content-Type", o.ContentType)
	}
	if o.CacheControl != "" {
		h.Set("Cache-Control", o.CacheControl)
	}
	h.Set("X-Amz-Meta-"+MetaSHA256, o.SHA256)
	h.Set("X-Amz-Content-Sha256", o.SHA256)
	if err := d.signer.SignHTTP(ctx, creds, req, o.SHA256, "s3", d.region, time.Now().UTC()); err != nil {
		return "", err, false
	}
	if d.count != nil {
		d.count()
	}
	resp, err := d.rt.RoundTrip(req)
	if err != nil {
		return "", fmt.Errorf("operation error S3: PutObject: %w", err), ctx.Err() == nil
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return trimETag(resp.Header.Get("ETag")), nil, false
	}
	return "", putError(resp), retryable(resp.StatusCode)
}

// putError is an S3 error answer in the shape the SDK returns it (an awshttp.ResponseError
// around a smithy.APIError), so that awserr classifies it the same way.
func putError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var x struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	_ = xml.Unmarshal(b, &x)
	var cause error = errors.New(resp.Status)
	if x.Code != "" {
		fault := smithy.FaultClient
		if resp.StatusCode >= 500 {
			fault = smithy.FaultServer
		}
		cause = &smithy.GenericAPIError{Code: x.Code, Message: x.Message, Fault: fault}
	}
	re := &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: cause},
		RequestID:     resp.Header.Get("X-Amz-Request-Id"),
	}
	return fmt.Errorf("operation error S3: PutObject: %w", re)
}

// retryable is the SDK standard retryer's view of a status: throttling and server errors.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500
}
