package s3lock

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/awsx/awserr"
)

// S3 is a Store on an S3 bucket (versitygw on the twin implements If-None-Match and If-Match
// atomically, checked in its v1.8.0 posix backend).
type S3 struct {
	Client *s3.Client
	Bucket string
}

var _ Store = (*S3)(nil)

// Where names the bucket.
func (s *S3) Where() string { return "s3://" + s.Bucket }

func (s *S3) put(ctx context.Context, key string, body []byte, ifNone bool, ifMatch string) (string, error) {
	in := &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String("application/json"), CacheControl: aws.String("no-store")}
	if ifNone {
		in.IfNoneMatch = aws.String("*")
	}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := s.Client.PutObject(ctx, in)
	if err != nil {
		switch awserr.S3(err) {
		case awserr.S3Precondition:
			if ifNone {
				return "", fmt.Errorf("put %s/%s: %w", s.Where(), key, ErrExists)
			}
			return "", fmt.Errorf("put %s/%s: %w", s.Where(), key, ErrChanged)
		case awserr.S3NotFound:
			return "", fmt.Errorf("put %s/%s: %w", s.Where(), key, ErrNotFound)
		}
		return "", fmt.Errorf("put %s/%s: %w", s.Where(), key, err)
	}
	return aws.ToString(out.ETag), nil
}

// Create writes key if absent.
func (s *S3) Create(ctx context.Context, key string, body []byte) (string, error) {
	return s.put(ctx, key, body, true, "")
}

// Replace writes key if its ETag matches.
func (s *S3) Replace(ctx context.Context, key string, body []byte, etag string) (string, error) {
	return s.put(ctx, key, body, false, etag)
}

// Read reads key and its age by the server's clock.
func (s *S3) Read(ctx context.Context, key string) (Object, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		if awserr.S3(err) == awserr.S3NotFound {
			return Object{}, fmt.Errorf("get %s/%s: %w", s.Where(), key, ErrNotFound)
		}
		return Object{}, fmt.Errorf("get %s/%s: %w", s.Where(), key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return Object{}, fmt.Errorf("get %s/%s: %w", s.Where(), key, err)
	}
	o := Object{Body: b, ETag: aws.ToString(out.ETag)}
	// Both times come from the server: its Date header and the object's Last-Modified.
	if now, ok := awsmiddleware.GetServerTime(out.ResultMetadata); ok && out.LastModified != nil {
		o.Age = max(now.Sub(*out.LastModified), 0)
	}
	return o, nil
}

// Delete removes key if its ETag matches.
func (s *S3) Delete(ctx context.Context, key, etag string) error {
	in := &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)}
	if etag != "" {
		in.IfMatch = aws.String(etag)
	}
	if _, err := s.Client.DeleteObject(ctx, in); err != nil {
		switch awserr.S3(err) {
		case awserr.S3Precondition:
			return fmt.Errorf("delete %s/%s: %w", s.Where(), key, ErrChanged)
		case awserr.S3NotFound:
			return nil
		}
		return fmt.Errorf("delete %s/%s: %w", s.Where(), key, err)
	}
	return nil
}

// Mem is an in-memory Store with its own server clock (tests).
type Mem struct {
	Name string
	Now  func() time.Time // the server's clock; default time.Now

	mu   sync.Mutex
	objs map[string]memObj
	// Fail, when set, is called before every operation; a non-nil error fails it.
	Fail func(op, key string) error
}

type memObj struct {
	body     []byte
	etag     string
	modified time.Time
}

var _ Store = (*Mem)(nil)

func (m *Mem) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Where names the store.
func (m *Mem) Where() string { return "mem://" + m.Name }

func (m *Mem) write(key string, body []byte) string {
	if m.objs == nil {
		m.objs = map[string]memObj{}
	}
	h := md5.Sum(append(append([]byte{}, body...), []byte(m.now().String())...))
	etag := `"` + hex.EncodeToString(h[:]) + `"`
	m.objs[key] = memObj{body: append([]byte{}, body...), etag: etag, modified: m.now()}
	return etag
}

func (m *Mem) fail(op, key string) error {
	if m.Fail != nil {
		return m.Fail(op, key)
	}
	return nil
}

// Create writes key if absent.
func (m *Mem) Create(_ context.Context, key string, body []byte) (string, error) {
	if err := m.fail("create", key); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[key]; ok {
		return "", ErrExists
	}
	return m.write(key, body), nil
}

// Replace writes key if its ETag matches.
func (m *Mem) Replace(_ context.Context, key string, body []byte, etag string) (string, error) {
	if err := m.fail("replace", key); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return "", ErrNotFound
	}
	if o.etag != etag {
		return "", ErrChanged
	}
	return m.write(key, body), nil
}

// Read reads key.
func (m *Mem) Read(_ context.Context, key string) (Object, error) {
	if err := m.fail("read", key); err != nil {
		return Object{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return Object{}, ErrNotFound
	}
	return Object{Body: append([]byte{}, o.body...), ETag: o.etag, Age: m.now().Sub(o.modified)}, nil
}

// Delete removes key if its ETag matches.
func (m *Mem) Delete(_ context.Context, key, etag string) error {
	if err := m.fail("delete", key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return nil
	}
	if etag != "" && o.etag != etag {
		return ErrChanged
	}
	delete(m.objs, key)
	return nil
}
