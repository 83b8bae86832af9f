package restic

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/testenv"
	"github.com/shtetl/zmanim-ops/internal/testfix"
)

// newRepo returns an uninitialised repository in a scratch bucket on the twin's S3 server.
func newRepo(t *testing.T) *Repo {
	t.Helper()
	bin := testenv.Require(t, testenv.ResticBin)
	s := testfix.RequireS3(t)
	bucket := s.NewBucket(t, "zops-test-restic")
	id := testfix.RandHex(4)
	return &Repo{Bin: bin, URL: "s3:" + s.Endpoint + "/" + bucket + "/" + id, Password: "pw-" + id,
		Env: s.Env(), Options: []string{"s3.bucket-lookup=path", "s3.region=" + s.Region}}
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
