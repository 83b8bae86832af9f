package onbox

import (
	"context"
	"errors"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/testfix"
)

// TestS3StoreAgainstTheTwin checks the S3Store's conditional writes and its error mapping
// (internal/awsx/awserr) against the twin's real S3 server (versitygw).
func TestS3StoreAgainstTheTwin(t *testing.T) {
	fx := testfix.RequireS3(t)
	client := fx.Client
	ctx := context.Background()
	if err := (&S3Store{Client: client, Name: "onbox-test-missing-" + testfix.RandHex(5)}).Check(ctx); !errors.Is(err, ErrNoBucket) {
		t.Fatalf("Check on a missing bucket: %v, want ErrNoBucket", err)
	}
	name := fx.NewBucket(t, "onbox-test")
	st := &S3Store{Client: client, Name: name}
	must(t, st.Check(ctx))
	if _, _, err := st.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
	}
	etag, err := st.Put(ctx, "k", []byte("one"), Cond{IfAbsent: true})
	must(t, err)
	if _, err := st.Put(ctx, "k", []byte("two"), Cond{IfAbsent: true}); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("second IfAbsent put: %v, want ErrPrecondition", err)
	}
	if _, err := st.Put(ctx, "k", []byte("two"), Cond{IfMatch: `"0123"`}); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("put with a stale If-Match: %v, want ErrPrecondition", err)
	}
	if _, err := st.Put(ctx, "k", []byte("two"), Cond{IfMatch: etag}); err != nil {
		t.Fatalf("put with the current If-Match: %v", err)
	}
	must(t, st.Delete(ctx, "gone", Cond{}))
	if _, err := (&S3Store{Client: client, Name: name + "-missing"}).Put(ctx, "k", []byte("x"), Cond{}); !errors.Is(err, ErrNoBucket) {
		t.Fatalf("put into a missing bucket: %v, want ErrNoBucket", err)
	}
}
