package twin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// S3Server is one versitygw launch: the twin's, or a test's own on a free port.
//
// Production semantics it mirrors (issue 14, finding 3): the backups bucket is versioned, and
// the box reaches it with its own credentials under a policy that lets restic read, write and
// delete objects but not delete versions or change versioning, lifecycle or the policy. So the
// twin runs versitygw with its internal IAM (a non-root "box" user) and its versioning
// directory, and the box's permissions come from config/backupaccess.go like the CDK role's.
type S3Server struct {
	Bin string // the versitygw binary (tools.Ensure(ctx, "versitygw"))
	// DataDir holds the buckets; VersioningDir the noncurrent versions and delete markers
	// (outside DataDir, else it would show as a bucket); IAMDir the internal IAM's users.
	DataDir, VersioningDir, IAMDir string
	Addr                           string // host:port to listen on
	Region                         string
	// Root credentials (the operator); passed in the environment, never on the command line,
	// where any local user could read them from /proc or ps.
	RootAccess, RootSecret string
	// BoxAccess and BoxSecret are the box's credentials: a plain user whose rights on the
	// backups bucket come only from the bucket policy (BoxBackupsPolicy).
	BoxAccess, BoxSecret string
}

// S3ServerIn returns a server whose state lives under dir (tests).
func S3ServerIn(dir string) S3Server {
	return S3Server{DataDir: filepath.Join(dir, "data"), VersioningDir: filepath.Join(dir, "versions"), IAMDir: filepath.Join(dir, "iam")}
}

// Command prepares the state directories and the box user, and returns the command to start.
func (s S3Server) Command() (*exec.Cmd, error) {
	for _, d := range []string{s.DataDir, s.VersioningDir, s.IAMDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("s3 server state: %w", err)
		}
	}
	if s.BoxAccess != "" {
		// versitygw's internal IAM file (auth/iam_internal.go: users.json, accessAccounts by
		// access key); written before the start, so no admin API call with root keys is needed.
		users := map[string]any{"accessAccounts": map[string]any{
			s.BoxAccess: map[string]any{"access": s.BoxAccess, "secret": s.BoxSecret, "role": "user"},
		}}
		b, _ := json.Marshal(users)
		if err := os.WriteFile(filepath.Join(s.IAMDir, "users.json"), b, 0o600); err != nil {
			return nil, fmt.Errorf("s3 server users: %w", err)
		}
	}
	cmd := exec.Command(s.Bin, "--port", s.Addr, "--region", s.Region, "--keep-alive", "--iam-dir", s.IAMDir,
		"posix", "--versioning-dir", s.VersioningDir, s.DataDir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.RootAccess, "ROOT_SECRET_ACCESS_KEY="+s.RootSecret)
	return cmd, nil
}

// BoxBackupsPolicy is the backups bucket's policy for the box user: what
// config.BoxBackup*Actions allow, and an explicit deny of config.BoxBackupDeniedActions.
func BoxBackupsPolicy(bucket, boxAccess string) string {
	bucketArn, objects := "arn:aws:s3:::"+bucket, "arn:aws:s3:::"+bucket+"/*"
	principal := map[string]any{"AWS": []string{boxAccess}}
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{"Sid": "BoxBucket", "Effect": "Allow", "Principal": principal, "Action": config.BoxBackupBucketActions, "Resource": []string{bucketArn}},
			map[string]any{"Sid": "BoxObjects", "Effect": "Allow", "Principal": principal, "Action": config.BoxBackupObjectActions, "Resource": []string{objects}},
			map[string]any{"Sid": "BoxCannotDestroyHistory", "Effect": "Deny", "Principal": principal, "Action": config.BoxBackupDeniedActions, "Resource": []string{bucketArn, objects}},
		},
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

// ProtectBackups turns versioning on for the backups bucket and applies BoxBackupsPolicy, with
// the operator's (root) client. Idempotent.
func ProtectBackups(ctx context.Context, c *s3.Client, bucket, boxAccess string) error {
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		return fmt.Errorf("enable versioning on %s: %w (versitygw needs posix --versioning-dir)", bucket, err)
	}
	if boxAccess == "" {
		return nil
	}
	if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(BoxBackupsPolicy(bucket, boxAccess))}); err != nil {
		return fmt.Errorf("box policy on %s: %w", bucket, err)
	}
	return nil
}
