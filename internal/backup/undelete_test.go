package backup

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shtetl/zmanim-ops/internal/restic"
	"github.com/shtetl/zmanim-ops/internal/tools"
	"github.com/shtetl/zmanim-ops/internal/twin"
)

// startOwnS3 starts a versitygw of this test on a free port, launched exactly as the twin
// launches its own (twin.S3Server: versioning directory, the box user, secrets in the
// environment), so the shared twin is not touched.
func startOwnS3(t *testing.T) (endpoint string, srv twin.S3Server) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts its own S3 server and runs restic")
	}
	ctx := context.Background()
	bin, err := tools.Ensure(ctx, "versitygw")
	if err != nil {
		t.Fatalf("versitygw: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv = twin.S3ServerIn(t.TempDir())
	srv.Bin, srv.Addr, srv.Region = bin, addr, "eu-west-1"
	srv.RootAccess, srv.RootSecret = "ROOTKEY0001", "root-secret-0123456789"
	srv.BoxAccess, srv.BoxSecret = "BOXKEY00001", "box-secret-0123456789"
	cmd, err := srv.Command()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cmd.Args {
		if strings.Contains(a, srv.RootSecret) || strings.Contains(a, srv.BoxSecret) {
			t.Fatalf("a secret is on the S3 server's command line: %q", cmd.Args)
		}
	}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	endpoint = "http://" + addr
	root := s3Client(endpoint, srv.RootAccess, srv.RootSecret)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err = root.ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("S3 server did not come up: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return endpoint, srv
}

func s3Client(endpoint, ak, sk string) *s3.Client {
	return s3.New(s3.Options{Region: "eu-west-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, "")})
}

func denied(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "AccessDenied") || strings.Contains(err.Error(), "403"))
}

// Finding 3 (issue 14): whoever controls the box holds its credentials. With them, restic works
// (backup, forget --prune, its locks), and deleting every object of the repository succeeds -
// but the deletes only add delete markers: deleting versions and changing versioning,
// lifecycle or the policy are refused, and the operator brings every snapshot back from the
// noncurrent versions (Undelete), intact.
func TestBoxCredentialsCannotDestroyBackupsAndDeletedSnapshotsAreRestored(t *testing.T) {
	endpoint, srv := startOwnS3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	resticBin, err := tools.Ensure(ctx, "restic")
	if err != nil {
		t.Fatal(err)
	}
	const bucket = "zmanim-backups-test"
	root := s3Client(endpoint, srv.RootAccess, srv.RootSecret)
	box := s3Client(endpoint, srv.BoxAccess, srv.BoxSecret)
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if err := twin.ProtectBackups(ctx, root, bucket, srv.BoxAccess); err != nil {
		t.Fatal(err)
	}

	// restic as the box: init, two backups, forget one with prune (deletes packs and locks).
	repo := &restic.Repo{Bin: resticBin, URL: "s3:" + endpoint + "/" + bucket + "/restic", Password: "pw-test",
		Env: []string{"AWS_ACCESS_KEY_ID=" + srv.BoxAccess, "AWS_SECRET_ACCESS_KEY=" + srv.BoxSecret, "AWS_DEFAULT_REGION=eu-west-1"}, Options: []string{"s3.bucket-lookup=path", "s3.region=eu-west-1"}}
	if err := repo.Init(ctx); err != nil {
		t.Fatalf("restic init as the box: %v", err)
	}
	var ids []string
	for i, content := range []string{"dump one", "dump two", "dump three"} {
		sum, err := repo.Backup(ctx, restic.BackupOptions{Host: "box", Tags: []string{"db"}, StdinFilename: "zmanim.dump",
			Command: []string{"printf", "%s", fmt.Sprintf("%s %d", content, i)}})
		if err != nil {
			t.Fatalf("restic backup as the box: %v", err)
		}
		ids = append(ids, sum.SnapshotID)
	}
	if _, err := repo.Forget(ctx, restic.ForgetOptions{IDs: ids[:1], Prune: true}); err != nil {
		t.Fatalf("restic forget --prune as the box (it must delete its packs and locks): %v", err)
	}

	// The attack: delete every object with the box's credentials.
	var keys []string
	p := s3.NewListObjectsV2Paginator(box, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	for _, k := range keys {
		if _, err := box.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
			t.Fatalf("box delete %s: %v", k, err)
		}
	}
	if _, err := repo.Snapshots(ctx, restic.Filter{}); err == nil {
		t.Fatalf("the repository still opens after every object was deleted")
	}
	// ... and what would make it permanent is refused.
	vs, err := root.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("restic/snapshots/")})
	if err != nil || len(vs.Versions) == 0 {
		t.Fatalf("versions of the deleted snapshots: %v, %v", vs, err)
	}
	v := vs.Versions[0]
	if _, err := box.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: v.Key, VersionId: v.VersionId}); !denied(err) {
		t.Errorf("box deleted version %s of %s: err = %v, want AccessDenied", aws.ToString(v.VersionId), aws.ToString(v.Key), err)
	}
	if _, err := box.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: []s3types.ObjectIdentifier{{Key: v.Key, VersionId: v.VersionId}}}}); err == nil {
		if out, _ := box.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: []s3types.ObjectIdentifier{{Key: v.Key, VersionId: v.VersionId}}}}); out != nil && len(out.Deleted) > 0 {
			t.Errorf("box deleted a version through DeleteObjects: %+v", out.Deleted)
		}
	}
	if _, err := box.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusSuspended}}); !denied(err) {
		t.Errorf("box suspended versioning: err = %v, want AccessDenied", err)
	}
	// versitygw does not implement lifecycle at all (501); AWS answers the box AccessDenied.
	if _, err := box.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String(bucket),
		LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{ID: aws.String("x"), Status: s3types.ExpirationStatusEnabled,
			Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("")}, NoncurrentVersionExpiration: &s3types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(1)}}}}}); !denied(err) && !strings.Contains(fmt.Sprint(err), "NotImplemented") {
		t.Errorf("box changed the lifecycle: err = %v, want AccessDenied", err)
	}
	if _, err := box.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String(bucket)}); !denied(err) {
		t.Errorf("box deleted the bucket policy: err = %v, want AccessDenied", err)
	}

	// Recovery by the operator: a dry run changes nothing, then every deleted object returns.
	// since is zero: versitygw (v1.8.0) stamps a delete marker with the deleted object's
	// modification time rather than the time of the delete, so a time filter cannot separate
	// the attack from restic's own earlier prune here; the pruned snapshot comes back too
	// (forget it again), which costs nothing but a second forget.
	dry, err := Undelete(ctx, root, bucket, "restic/", time.Time{}, true)
	if err != nil || !containsAll(dry.Restored, keys) {
		t.Fatalf("dry run: %v (want at least %v), %v", dry.Restored, keys, err)
	}
	if _, err := repo.Snapshots(ctx, restic.Filter{}); err == nil {
		t.Fatalf("the dry run restored something")
	}
	got, err := Undelete(ctx, root, bucket, "restic/", time.Time{}, false)
	if err != nil || !containsAll(got.Restored, keys) {
		t.Fatalf("undelete: %v (want at least %v), %v", got.Restored, keys, err)
	}
	snaps, err := repo.Snapshots(ctx, restic.Filter{})
	var have []string
	for _, s := range snaps {
		have = append(have, s.ID)
	}
	if err != nil || !containsAll(have, ids[1:]) {
		t.Fatalf("snapshots after undelete: %v, %v (want the kept ones %v)", have, err, ids[1:])
	}
	if _, err := repo.Check(ctx, restic.CheckOptions{ReadDataSubset: "1/1"}); err != nil {
		t.Fatalf("restic check --read-data after undelete: %v", err)
	}
	var buf bytes.Buffer
	if err := repo.Dump(ctx, ids[2], "/zmanim.dump", &buf); err != nil || buf.String() != "dump three 2" {
		t.Fatalf("dump of the last snapshot: %q, %v", buf.String(), err)
	}
}

func containsAll(have, want []string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}
