package s3lock

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/testfix"
)

// The S3 store on the real S3 server: conditional create, replace and delete, and the age from
// the server's Date and Last-Modified; two locks on one bucket exclude each other.
func TestS3StoreOnTheS3Server(t *testing.T) {
	s := testfix.RequireS3(t)
	st := &S3{Client: s.Client, Bucket: s.NewBucket(t, "s3lock")}
	ctx := context.Background()
	etag, err := st.Create(ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, "k", []byte("2")); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	if _, err := st.Replace(ctx, "k", []byte("2"), `"not-the-etag"`); !errors.Is(err, ErrChanged) {
		t.Fatalf("replace with a wrong etag: %v, want ErrChanged", err)
	}
	// Last-Modified and Date have one-second resolution, and the S3 server may round the first
	// (seen on versitygw: age 0 after 1.1 s): wait long enough that either way it is >= 1 s.
	time.Sleep(2100 * time.Millisecond)
	o, err := st.Read(ctx, "k")
	if err != nil || string(o.Body) != "1" || o.ETag != etag || o.Age < 500*time.Millisecond || o.Age > time.Minute {
		t.Fatalf("read: %q %s age %s, %v", o.Body, o.ETag, o.Age, err)
	}
	if err := st.Delete(ctx, "k", `"not-the-etag"`); !errors.Is(err, ErrChanged) {
		t.Fatalf("delete with a wrong etag: %v", err)
	}
	if err := st.Delete(ctx, "k", etag); err != nil {
		t.Fatal(err)
	}

	a := &Lock{Store: st, Key: "locks/deploy.json", Info: Info{Owner: "a"}, TTL: time.Minute}
	b := &Lock{Store: st, Key: "locks/deploy.json", Info: Info{Owner: "b"}, TTL: time.Minute}
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Acquire(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("b: %v, want ErrLocked", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Acquire(ctx); err != nil || b.Token() <= a.Token() {
		t.Fatalf("b after a: %v, tokens %d %d", err, a.Token(), b.Token())
	}
	_ = b.Release(ctx)
}
