package testfix

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"

	"github.com/shtetl/zmanim-ops/internal/jwtissuer"
)

// TestScratchDatabaseIsDroppedAtTheEnd creates a database in a subtest and checks that it is
// gone once the subtest has ended.
func TestScratchDatabaseIsDroppedAtTheEnd(t *testing.T) {
	t.Parallel()
	srv := RequirePG(t)
	var name string
	t.Run("use", func(t *testing.T) {
		url := srv.NewDB(t, "fix", "")
		name = DBName(url)
		if !strings.HasPrefix(name, "zops_fix_") {
			t.Errorf("database name %q", name)
		}
		ExecURL(t, url, `CREATE TABLE t (v text); INSERT INTO t VALUES ('it''s')`)
		ExecURL(t, url, `DELETE FROM t WHERE v = `+Quote("it's"))
	})
	ctx := context.Background()
	c, err := pgx.Connect(ctx, srv.Super.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s after the test: count %d, %v; want dropped", name, n, err)
	}
}

// TestScratchBucketIsRemovedAtTheEnd fills a bucket in a subtest and checks that it is gone,
// objects and all, once the subtest has ended.
func TestScratchBucketIsRemovedAtTheEnd(t *testing.T) {
	t.Parallel()
	s := RequireS3(t)
	ctx := context.Background()
	var bucket string
	t.Run("use", func(t *testing.T) {
		bucket = s.NewBucket(t, "zops-fix")
		for _, k := range []string{"a", "dir/b"} {
			if _, err := s.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
				t.Fatalf("put %s: %v", k, err)
			}
		}
	})
	_, err := s.Client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		t.Fatalf("bucket %s still exists after the test", bucket)
	}
	var nf interface{ ErrorCode() string }
	if !errors.As(err, &nf) || (nf.ErrorCode() != "NotFound" && nf.ErrorCode() != "NoSuchBucket") {
		t.Fatalf("head %s after the test: %v; want not found", bucket, err)
	}
}

// TestTokenCarriesKindSubjectAndAudience mints through the twin's issuer and reads the claims
// back (their signature is the gateway's business, tested there).
func TestTokenCarriesKindSubjectAndAudience(t *testing.T) {
	t.Parallel()
	claims := func(tok string) map[string]any {
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("not a JWT: %d parts", len(parts))
		}
		b, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	admin := claims(Token(t, jwtissuer.KindAdmin, "user_fix"))
	if admin["sub"] != "user_fix" || admin["scope"] != "publisher admin" {
		t.Errorf("admin token claims %v", admin)
	}
	other := claims(TokenFor(t, jwtissuer.KindUser, "", "someone-else"))
	if other["aud"] != "someone-else" || other["sub"] != "user_user" {
		t.Errorf("token for another audience: claims %v", other)
	}
}
