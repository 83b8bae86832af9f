package site

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/shtetl/zmanim-ops/internal/awsx/awserr"
)

// Errors from the bucket that need the user's action.
var (
	ErrNoBucket     = errors.New("bucket does not exist")
	ErrAccessDenied = errors.New("access denied")
)

// Requests counts the HTTP requests sent per S3 operation (retries included).
type Requests struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *Requests) add(op string) {
	r.mu.Lock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[op]++
	r.mu.Unlock()
}

// Get returns the count of one operation ("PutObject", "ListObjectsV2", ...).
func (r *Requests) Get(op string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[op]
}

// Snapshot returns a copy of all counts.
func (r *Requests) Snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.n))
	for k, v := range r.n {
		m[k] = v
	}
	return m
}

// S3Store is the Store of one bucket through aws-sdk-go-v2.
type S3Store struct {
	client   *s3.Client
	bucket   string
	requests *Requests
	optFns   []func(*s3.Options)
	hc       *awshttp.BuildableClient

	directOnce sync.Once
	direct     *directPut // nil: every PUT through the SDK (see directPut)
	noDirect   bool
}

var _ Store = (*S3Store)(nil)

// NewS3Store wraps client for bucket. Every call goes through a connection pool sized for
// concurrency, the standard retryer with backoff, and a counter of requests per operation.
func NewS3Store(client *s3.Client, bucket string, concurrency int, requests *Requests) *S3Store {
	if requests == nil {
		requests = &Requests{}
	}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 2 * concurrency
		t.MaxIdleConnsPerHost = 2 * concurrency
	})
	count := middleware.DeserializeMiddlewareFunc("zopsCountRequests", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		requests.add(awsmiddleware.GetOperationName(ctx))
		return next.HandleDeserialize(ctx, in)
	})
	return &S3Store{
		client:   client,
		bucket:   bucket,
		requests: requests,
		hc:       hc,
		optFns: []func(*s3.Options){func(o *s3.Options) {
			o.HTTPClient = hc
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = 5
				so.MaxBackoff = 2 * time.Second
			})
			// The SDK would otherwise read every body once more for a CRC32; the payload is
			// already signed with its SHA-256 (see Put).
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
			o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
				return s.Deserialize.Add(count, middleware.After)
			})
		}},
	}
}

// Requests returns the request counter.
func (s *S3Store) Requests() *Requests { return s.requests }

// Bucket returns the bucket name.
func (s *S3Store) Bucket() string { return s.bucket }

func (s *S3Store) opts(extra ...func(*s3.Options)) []func(*s3.Options) {
	return append(append([]func(*s3.Options){}, s.optFns...), extra...)
}

// List implements Store.
func (s *S3Store) List(ctx context.Context) (map[string]Listed, error) {
	out := map[string]Listed{}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx, s.opts()...)
		if err != nil {
			return nil, s.wrap("list", "", err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = Listed{Size: aws.ToInt64(o.Size), ETag: trimETag(aws.ToString(o.ETag))}
		}
	}
	return out, nil
}

// Get implements Store.
func (s *S3Store) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}, s.opts()...)
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", s.bucket, key, err)
	}
	return b, nil
}

// Head implements Store.
func (s *S3Store) Head(ctx context.Context, key string) (Head, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}, s.opts()...)
	if err != nil {
		return Head{}, s.wrap("head", key, err)
	}
	return Head{
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         trimETag(aws.ToString(out.ETag)),
		SHA256:       out.Metadata[MetaSHA256],
		ContentType:  aws.ToString(out.ContentType),
		CacheControl: aws.ToString(out.CacheControl),
	}, nil
}

// Put implements Store. The payload is signed with the SHA-256 computed while scanning, so
// the SDK does not read the body a second time, and the server rejects a body that changed
// on disk in between.
func (s *S3Store) Put(ctx context.Context, o Object) (string, error) {
	if _, seekable := o.Body.(io.ReaderAt); o.SHA256 != "" && seekable && !s.noDirect {
		s.directOnce.Do(func() {
			s.direct = newDirectPut(ctx, s.client, s.bucket, s.hc.GetTransport(), func() { s.requests.add("PutObject") })
		})
		if s.direct != nil {
			etag, err := s.direct.put(ctx, o)
			if err != nil {
				return "", s.wrap("put", o.Key, err)
			}
			return etag, nil
		}
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(o.Key),
		Body:          o.Body,
		ContentLength: aws.Int64(o.Size),
		ContentType:   aws.String(o.ContentType),
		CacheControl:  aws.String(o.CacheControl),
	}
	if o.SHA256 != "" {
		in.Metadata = map[string]string{MetaSHA256: o.SHA256}
	}
	setHash := func(opt *s3.Options) {
		if o.SHA256 == "" {
			return
		}
		opt.APIOptions = append(opt.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("zopsPayloadHash", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				return next.HandleFinalize(v4.SetPayloadHash(ctx, o.SHA256), in)
			}), "Retry", middleware.After)
		})
	}
	out, err := s.client.PutObject(ctx, in, s.opts(setHash)...)
	if err != nil {
		return "", s.wrap("put", o.Key, err)
	}
	return trimETag(aws.ToString(out.ETag)), nil
}

// Delete implements Store.
func (s *S3Store) Delete(ctx context.Context, keys []string) error {
	for start := 0; start < len(keys); start += 1000 {
		end := min(start+1000, len(keys))
		ids := make([]types.ObjectIdentifier, 0, end-start)
		for _, k := range keys[start:end] {
			ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		}, s.opts()...)
		if err != nil {
			return s.wrap("delete", "", err)
		}
		if len(out.Errors) > 0 {
			var msgs []string
			for _, e := range out.Errors {
				msgs = append(msgs, fmt.Sprintf("%s: %s %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
			}
			return fmt.Errorf("delete from s3://%s: %d keys failed: %s", s.bucket, len(out.Errors), strings.Join(msgs, "; "))
		}
	}
	return nil
}

func (s *S3Store) wrap(op, key string, err error) error {
	where := "s3://" + s.bucket + "/" + key
	switch awserr.S3(err) {
	case awserr.S3NoBucket:
		return fmt.Errorf("%s %s: %w: create it (infra:deploy in production; the twin creates its buckets on start) or set the right bucket name", op, where, ErrNoBucket)
	case awserr.S3AccessDenied:
		detail := ""
		if c := awserr.Code(err); c != "" {
			detail = " (" + c + ")"
		}
		return fmt.Errorf("%s %s: %w%s: check the credentials and that their policy allows s3:%s on the bucket", op, where, ErrAccessDenied, detail, s3Action(op))
	case awserr.S3NotFound:
		// A bare 404 (no error code) only means a missing key for reads.
		if awserr.Code(err) != "" || op == "get" || op == "head" {
			return fmt.Errorf("%s %s: %w", op, where, ErrNotFound)
		}
	}
	return fmt.Errorf("%s %s: %w", op, where, err)
}

func s3Action(op string) string {
	switch op {
	case "list":
		return "ListBucket"
	case "get", "head":
		return "GetObject"
	case "put":
		return "PutObject"
	case "delete":
		return "DeleteObject"
	}
	return op
}

func trimETag(e string) string { return strings.Trim(e, `"`) }
