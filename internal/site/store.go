package site

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned by Store.Get and Store.Head for a missing key.
var ErrNotFound = errors.New("object not found")

// Listed is an object as a listing shows it.
type Listed struct {
	Size int64
	ETag string
}

// Object is what PutObject writes.
type Object struct {
	Key          string
	Body         io.ReadSeeker
	Size         int64
	SHA256       string // hex; stored as user metadata and used as the payload hash
	ContentType  string
	CacheControl string
}

// Head is what a HEAD request shows.
type Head struct {
	Size         int64
	ETag         string
	SHA256       string // from user metadata; "" when absent
	ContentType  string
	CacheControl string
}

// Store is the bucket the site lives in.
type Store interface {
	// List returns every key of the bucket with size and ETag.
	List(ctx context.Context) (map[string]Listed, error)
	// Get returns the whole body of key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Head returns the metadata of key, or ErrNotFound.
	Head(ctx context.Context, key string) (Head, error)
	// Put writes one object and returns its ETag.
	Put(ctx context.Context, o Object) (etag string, err error)
	// Delete removes keys (absent keys are not an error).
	Delete(ctx context.Context, keys []string) error
}

// Invalidator purges paths from the CDN.
type Invalidator interface {
	// Invalidate starts an invalidation of paths (URL-encoded, "*" only at the end) and
	// returns its id.
	Invalidate(ctx context.Context, paths []string, reference string) (id string, err error)
	// Wait blocks until the invalidation completes or timeout passes.
	Wait(ctx context.Context, id string, timeout time.Duration) error
}
