package restic

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// newRepo returns an uninitialised repository under a unique prefix of a test bucket on the
// S3 server.
func newRepo(t *testing.T) *Repo {
	t.Helper()
	bin := testenv.Require(t, testenv.ResticBin)
	ep := testenv.Require(t, testenv.S3Endpoint)
	ak, sk := testenv.Require(t, testenv.S3AccessKey), testenv.Require(t, testenv.S3SecretKey)
	c := s3.New(s3.Options{Region: testS3Region(), BaseEndpoint: aws.String(ep), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, "")})
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("zops-test-restic")}); err != nil &&
		!strings.Contains(err.Error(), "BucketAlready") {
		t.Fatalf("bucket: %v", err)
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	return &Repo{Bin: bin, URL: "s3:" + ep + "/zops-test-restic/" + hex.EncodeToString(id), Password: "pw-" + hex.EncodeToString(id),
		Env: []string{"AWS_ACCESS_KEY_ID=" + ak, "AWS_SECRET_ACCESS_KEY=" + sk}, Options: []string{"s3.bucket-lookup=path"}}
}

func TestRepoLifecycle(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if _, err := r.Snapshots(ctx, Filter{}); !errors.Is(err, ErrNoRepository) {
		t.Fatalf("snapshots of a missing repository: err = %v, want ErrNoRepository", err)
	}
	if created, err := r.EnsureInit(ctx); err != nil || !created {
		t.Fatalf("EnsureInit = %v, %v", created, err)
	}
	if created, err := r.EnsureInit(ctx); err != nil || created {
		t.Fatalf("second EnsureInit = %v, %v", created, err)
	}

	// A failing command saves nothing (the reason --stdin-from-command is used at all), and
	// the command does not see the repository password.
	_, err := r.Backup(ctx, BackupOptions{Host: "h", Command: []string{"sh", "-c", "echo partial; exit 3"}, StdinFilename: "x"})
	if !errors.Is(err, ErrFatal) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("failing command: err = %v", err)
	}
	sum, err := r.Backup(ctx, BackupOptions{Host: "h", Tags: []string{"t1"}, StdinFilename: "env.txt",
		Command:    []string{"sh", "-c", `echo "pw=${RESTIC_PASSWORD:-unset} secret=${AWS_SECRET_ACCESS_KEY:-unset} marker=$MARKER"`},
		CommandEnv: []string{"MARKER=passed"}})
	if err != nil || sum.SnapshotID == "" {
		t.Fatalf("backup: %+v, %v", sum, err)
	}
	snaps, err := r.Snapshots(ctx, Filter{})
	if err != nil || len(snaps) != 1 || !snaps[0].HasTag("t1") || snaps[0].Hostname != "h" {
		t.Fatalf("snapshots = %+v, %v", snaps, err)
	}
	var buf bytes.Buffer
	if err := r.Dump(ctx, sum.SnapshotID, "/env.txt", &buf); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(buf.String()); got != "pw=unset secret=unset marker=passed" {
		t.Errorf("the command saw %q", got)
	}
	if _, err := r.Forget(ctx, ForgetOptions{IDs: []string{sum.SnapshotID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Latest(ctx, Filter{}); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("after forget: err = %v, want ErrNoSnapshot", err)
	}
	if _, err := r.Check(ctx, CheckOptions{ReadDataSubset: "1/7"}); err != nil {
		t.Errorf("check: %v", err)
	}
	bad := *r
	bad.Password = "wrong"
	if _, err := bad.Snapshots(ctx, Filter{}); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: err = %v", err)
	}
}

// testS3Region is the region the S3 server checks signatures for (the twin's: eu-west-1).
func testS3Region() string {
	if r := os.Getenv(testenv.S3Region); r != "" {
		return r
	}
	return "us-east-1"
}
