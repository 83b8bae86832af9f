package onbox

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/shtetl/zmanim-ops/internal/awsx/awserr"
)

// Errors of a Store.
var (
	ErrNotFound     = errors.New("object not found")
	ErrPrecondition = errors.New("precondition failed") // If-None-Match / If-Match did not hold
	ErrNoBucket     = errors.New("bucket does not exist")
)

// Cond is a conditional write.
type Cond struct {
	IfAbsent bool   // write only if the key does not exist (If-None-Match: *)
	IfMatch  string // write or delete only if the current ETag is this one
}

// Store is the releases bucket.
type Store interface {
	// Bucket names the bucket, for messages.
	Bucket() string
	// Check returns ErrNoBucket (wrapped) when the bucket does not exist.
	Check(ctx context.Context) error
	// Put writes key atomically and returns its ETag; a failed Cond is ErrPrecondition.
	Put(ctx context.Context, key string, body []byte, c Cond) (string, error)
	// Get reads key and its ETag; a missing key is ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, string, error)
	// List returns the keys under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes key (only if its ETag is c.IfMatch when set); a missing key is no error.
	Delete(ctx context.Context, key string, c Cond) error
}

// S3Store is a Store on an S3 bucket (versitygw on the twin). Conditional writes use S3's
// If-None-Match: * and If-Match, which versitygw implements atomically (checked in its
// v1.8.0 posix backend), so no check-then-put race exists.
type S3Store struct {
	Client *s3.Client
	Name   string
}

var _ Store = (*S3Store)(nil)

// Bucket names the bucket.
func (s *S3Store) Bucket() string { return s.Name }

// Check verifies the bucket exists.
func (s *S3Store) Check(ctx context.Context) error {
	_, err := s.Client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.Name)})
	if err != nil {
		if k := awserr.S3(err); k == awserr.S3NoBucket || k == awserr.S3NotFound {
			return fmt.Errorf("%w: s3://%s; create it (twin: `go tool mage twin:up`; AWS: the storage stack, `go tool mage infra:deploy`) or set ZOPS_BUCKET_RELEASES", ErrNoBucket, s.Name)
		}
		return fmt.Errorf("check bucket s3://%s: %w", s.Name, err)
	}
	return nil
}

// Put writes an object.
func (s *S3Store) Put(ctx context.Context, key string, body []byte, c Cond) (string, error) {
	in := &s3.PutObjectInput{Bucket: aws.String(s.Name), Key: aws.String(key), Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))}
	if c.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if c.IfMatch != "" {
		in.IfMatch = aws.String(c.IfMatch)
	}
	out, err := s.Client.PutObject(ctx, in)
	if err != nil {
		if awserr.S3(err) == awserr.S3Precondition {
			return "", fmt.Errorf("put s3://%s/%s: %w", s.Name, key, ErrPrecondition)
		}
		if awserr.S3(err) == awserr.S3NoBucket {
			return "", fmt.Errorf("put s3://%s/%s: %w", s.Name, key, ErrNoBucket)
		}
		return "", fmt.Errorf("put s3://%s/%s: %w", s.Name, key, err)
	}
	return aws.ToString(out.ETag), nil
}

// Get reads an object.
func (s *S3Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Name), Key: aws.String(key)})
	if err != nil {
		if k := awserr.S3(err); k == awserr.S3NotFound || k == awserr.S3NoBucket {
			return nil, "", fmt.Errorf("get s3://%s/%s: %w", s.Name, key, ErrNotFound)
		}
		return nil, "", fmt.Errorf("get s3://%s/%s: %w", s.Name, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", fmt.Errorf("get s3://%s/%s: %w", s.Name, key, err)
	}
	return b, aws.ToString(out.ETag), nil
}

// List lists keys under prefix.
func (s *S3Store) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.Client, &s3.ListObjectsV2Input{Bucket: aws.String(s.Name), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if awserr.S3(err) == awserr.S3NoBucket {
				return nil, fmt.Errorf("list s3://%s/%s: %w", s.Name, prefix, ErrNoBucket)
			}
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.Name, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Delete deletes an object.
func (s *S3Store) Delete(ctx context.Context, key string, c Cond) error {
	in := &s3.DeleteObjectInput{Bucket: aws.String(s.Name), Key: aws.String(key)}
	if c.IfMatch != "" {
		in.IfMatch = aws.String(c.IfMatch)
	}
	_, err := s.Client.DeleteObject(ctx, in)
	if err != nil {
		if awserr.S3(err) == awserr.S3Precondition {
			return fmt.Errorf("delete s3://%s/%s: %w", s.Name, key, ErrPrecondition)
		}
		if k := awserr.S3(err); k == awserr.S3NotFound || k == awserr.S3NoBucket {
			return nil
		}
		return fmt.Errorf("delete s3://%s/%s: %w", s.Name, key, err)
	}
	return nil
}

// MemStore is an in-memory Store with the same conditional semantics, for tests.
type MemStore struct {
	Name    string
	Missing bool // behave as a bucket that does not exist
	mu      sync.Mutex
	objs    map[string][]byte
	// Puts counts writes per key (tests check that nothing was overwritten).
	Puts map[string]int
	// Corrupt, when set, alters bodies returned by Get for keys it matches (tests).
	Corrupt func(key string, b []byte) []byte
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore(name string) *MemStore {
	return &MemStore{Name: name, objs: map[string][]byte{}, Puts: map[string]int{}}
}

func etag(b []byte) string {
	h := md5.Sum(b)
	return `"` + hex.EncodeToString(h[:]) + `"`
}

// Bucket names the bucket.
func (m *MemStore) Bucket() string { return m.Name }

// Check fails when Missing.
func (m *MemStore) Check(ctx context.Context) error {
	if m.Missing {
		return fmt.Errorf("%w: s3://%s", ErrNoBucket, m.Name)
	}
	return nil
}

// Put writes.
func (m *MemStore) Put(ctx context.Context, key string, body []byte, c Cond) (string, error) {
	if m.Missing {
		return "", ErrNoBucket
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.objs[key]
	if c.IfAbsent && ok {
		return "", fmt.Errorf("put %s: %w", key, ErrPrecondition)
	}
	if c.IfMatch != "" && (!ok || etag(cur) != c.IfMatch) {
		return "", fmt.Errorf("put %s: %w", key, ErrPrecondition)
	}
	m.objs[key] = append([]byte(nil), body...)
	m.Puts[key]++
	return etag(body), nil
}

// Get reads.
func (m *MemStore) Get(ctx context.Context, key string) ([]byte, string, error) {
	if m.Missing {
		return nil, "", ErrNoBucket
	}
	m.mu.Lock()
	b, ok := m.objs[key]
	m.mu.Unlock()
	if !ok {
		return nil, "", fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	out := append([]byte(nil), b...)
	if m.Corrupt != nil {
		out = m.Corrupt(key, out)
	}
	return out, etag(b), nil
}

// List lists.
func (m *MemStore) List(ctx context.Context, prefix string) ([]string, error) {
	if m.Missing {
		return nil, ErrNoBucket
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Delete deletes.
func (m *MemStore) Delete(ctx context.Context, key string, c Cond) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.objs[key]
	if !ok {
		return nil
	}
	if c.IfMatch != "" && etag(cur) != c.IfMatch {
		return fmt.Errorf("delete %s: %w", key, ErrPrecondition)
	}
	delete(m.objs, key)
	return nil
}
