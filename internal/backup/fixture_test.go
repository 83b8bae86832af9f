package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/jackc/pgx/v5"

	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/restic"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

const testBucket = "zops-test-backup"

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testS3 returns endpoint and keys, creating the test bucket once.
func testS3(t *testing.T) (endpoint, access, secret string) {
	t.Helper()
	endpoint = testenv.Require(t, testenv.S3Endpoint)
	access = testenv.Require(t, testenv.S3AccessKey)
	secret = testenv.Require(t, testenv.S3SecretKey)
	c := s3.New(s3.Options{
		Region: testS3Region(), BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(access, secret, ""),
	})
	_, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(testBucket)})
	if err != nil && !strings.Contains(err.Error(), "BucketAlreadyOwnedByYou") && !strings.Contains(err.Error(), "BucketAlreadyExists") {
		t.Fatalf("create test bucket: %v", err)
	}
	return endpoint, access, secret
}

// testRepo returns a fresh repository under a unique prefix of the test bucket.
func testRepo(t *testing.T) *restic.Repo {
	t.Helper()
	bin := testenv.Require(t, testenv.ResticBin)
	endpoint, access, secret := testS3(t)
	return &restic.Repo{
		Bin:       bin,
		URL:       fmt.Sprintf("s3:%s/%s/%s-%s", endpoint, testBucket, strings.ReplaceAll(t.Name(), "/", "_"), randHex(4)),
		Password:  "test-" + randHex(8),
		Env:       []string{"AWS_ACCESS_KEY_ID=" + access, "AWS_SECRET_ACCESS_KEY=" + secret},
		Options:   []string{"s3.bucket-lookup=path", "s3.region=" + testS3Region()},
		RetryLock: 0,
	}
}

// testDB creates a database with PostGIS and n rows in a cities table plus a small second
// table, dropped at the end of the test.
func testDB(t *testing.T, n int) pgtool.Conn {
	t.Helper()
	admin := pgtool.MustParse(testenv.Require(t, testenv.PostgresURL))
	name := "zops_bk_" + randHex(4)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, admin.URL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create db: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin.URL())
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+"_drill WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	db := admin.WithDatabase(name)
	d, err := pgx.Connect(ctx, db.URL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer d.Close(ctx)
	_, err = d.Exec(ctx, fmt.Sprintf(`
CREATE EXTENSION postgis;
CREATE TABLE cities (id bigint PRIMARY KEY, name text NOT NULL, geom geometry(Point,4326), population int);
INSERT INTO cities SELECT g, 'city-' || g || '-' || md5(g::text), ST_SetSRID(ST_MakePoint((g %% 360) - 180, (g %% 170) - 85), 4326), g * 7
  FROM generate_series(1, %d) g;
CREATE TABLE publishers (id serial PRIMARY KEY, name text, created timestamptz DEFAULT now());
INSERT INTO publishers (name) VALUES ('a'), ('b'), ('c');`, n))
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	return db
}

func testJob(t *testing.T, rows int) *Job {
	t.Helper()
	return &Job{
		Repo:         testRepo(t),
		PG:           testDB(t, rows),
		RedisAddr:    testenv.Require(t, testenv.RedisAddr),
		Host:         "testbox",
		KeepDaily:    7,
		MinDumpBytes: 4 << 10,
		ScratchDir:   t.TempDir(),
		Log:          testLog{t},
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Helper()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// sesNotifier returns an SES notifier pointed at the emulator, with a unique recipient.
func sesNotifier(t *testing.T) (*SESNotifier, string) {
	t.Helper()
	ep := testenv.Require(t, testenv.AWSEndpoint)
	c := sesv2.New(sesv2.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(ep),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	to := "ops-" + randHex(4) + "@example.com"
	return &SESNotifier{Client: c, From: "backups@example.com", To: to}, to
}

// sentEmail is one message in kumo's GET /kumo/ses/v2/sent-emails.
type sentEmail struct {
	FromEmailAddress string
	Destination      struct{ ToAddresses []string }
	Subject, Body    string
}

// sentEmails returns the emails the emulator holds for recipient.
func sentEmails(t *testing.T, to string) []sentEmail {
	t.Helper()
	ep := testenv.Require(t, testenv.AWSEndpoint)
	resp, err := http.Get(strings.TrimRight(ep, "/") + "/kumo/ses/v2/sent-emails")
	if err != nil {
		t.Fatalf("read sent emails: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var all struct{ SentEmails []sentEmail }
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatalf("sent emails: %v: %s", err, raw)
	}
	var out []sentEmail
	for _, e := range all.SentEmails {
		for _, a := range e.Destination.ToAddresses {
			if a == to {
				out = append(out, e)
			}
		}
	}
	return out
}

func countSnapshots(t *testing.T, r *restic.Repo, tags ...string) int {
	t.Helper()
	snaps, err := r.Snapshots(context.Background(), restic.Filter{Tags: tags})
	if err != nil && !errors.Is(err, restic.ErrNoRepository) {
		t.Fatalf("snapshots: %v", err)
	}
	return len(snaps)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func execSQL(t *testing.T, db pgtool.Conn, sql string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), db.URL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// testS3Region is the region the S3 server checks signatures for (the twin's: eu-west-1).
func testS3Region() string {
	if r := os.Getenv(testenv.S3Region); r != "" {
		return r
	}
	return "us-east-1"
}
