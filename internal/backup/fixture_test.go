package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/restic"
	"github.com/shtetl/zmanim-ops/internal/testenv"
	"github.com/shtetl/zmanim-ops/internal/testfix"
)

// testRepo returns a fresh repository in a scratch bucket on the twin's S3 server.
func testRepo(t *testing.T) *restic.Repo {
	t.Helper()
	bin := testenv.Require(t, testenv.ResticBin)
	s := testfix.RequireS3(t)
	bucket := s.NewBucket(t, "zops-test-backup")
	return &restic.Repo{
		Bin:       bin,
		URL:       fmt.Sprintf("s3:%s/%s/%s", s.Endpoint, bucket, strings.ReplaceAll(t.Name(), "/", "_")),
		Password:  "test-" + testfix.RandHex(8),
		Env:       s.Env(),
		Options:   []string{"s3.bucket-lookup=path", "s3.region=" + s.Region},
		RetryLock: 0,
	}
}

// testDB creates a database with PostGIS and n rows in a cities table plus a small second
// table, dropped at the end of the test with the restore drill's copy of it.
func testDB(t *testing.T, n int) pgtool.Conn {
	t.Helper()
	srv := testfix.RequirePG(t)
	url := srv.NewDB(t, "bk", "")
	srv.DropAtEnd(t, testfix.DBName(url)+"_drill")
	testfix.ExecURL(t, url, fmt.Sprintf(`
CREATE EXTENSION postgis;
CREATE TABLE cities (id bigint PRIMARY KEY, name text NOT NULL, geom geometry(Point,4326), population int);
INSERT INTO cities SELECT g, 'city-' || g || '-' || md5(g::text), ST_SetSRID(ST_MakePoint((g %% 360) - 180, (g %% 170) - 85), 4326), g * 7
  FROM generate_series(1, %d) g;
CREATE TABLE publishers (id serial PRIMARY KEY, name text, created timestamptz DEFAULT now());
INSERT INTO publishers (name) VALUES ('a'), ('b'), ('c');`, n))
	return pgtool.MustParse(url)
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
	to := "ops-" + testfix.RandHex(4) + "@example.com"
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
	testfix.ExecURL(t, db.URL(), sql)
}
