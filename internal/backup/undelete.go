package backup

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// VersionStore is what Undelete needs of S3, with the operator's credentials (the box's may
// not delete versions, by design: see config/backupaccess.go).
type VersionStore interface {
	// ListObjectVersions lists versions and delete markers under a prefix, one page.
	ListObjectVersions(ctx context.Context, in *s3.ListObjectVersionsInput, optFns ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
	// DeleteObject with a VersionId removes that version; removing a delete marker makes the
	// version below it current again.
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

var _ VersionStore = (*s3.Client)(nil)

// UndeleteResult says what Undelete brought back.
type UndeleteResult struct {
	Restored []string // keys whose delete marker was removed
}

// Undelete brings back every object under prefix that was deleted at or after since: it
// removes the latest delete marker of each such key, so its newest data version becomes current
// again (S3's documented way to undelete in a versioned bucket). Keys deleted before since stay
// deleted (restic pruned them long ago, legitimately); with dryRun nothing changes. It is the
// recovery after a compromised box deleted the restic repository: the noncurrent versions are
// kept config.BackupNoncurrentDays. restic lock files are skipped. A zero since restores every
// deleted key, including what restic pruned itself (harmless: forget the old snapshots again).
func Undelete(ctx context.Context, c VersionStore, bucket, prefix string, since time.Time, dryRun bool) (UndeleteResult, error) {
	var res UndeleteResult
	type marker struct {
		version string
		at      time.Time
	}
	latest := map[string]marker{} // key -> its latest delete marker, if that marker is the current version
	var keyMarker, versionMarker *string
	for {
		out, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix), KeyMarker: keyMarker, VersionIdMarker: versionMarker})
		if err != nil {
			return res, fmt.Errorf("undelete: list versions of s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, m := range out.DeleteMarkers {
			if aws.ToBool(m.IsLatest) {
				latest[aws.ToString(m.Key)] = marker{aws.ToString(m.VersionId), aws.ToTime(m.LastModified)}
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		keyMarker, versionMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
	for key, m := range latest {
		// restic's lock files are never brought back: a resurrected lock blocks the
		// repository, and they were deleted by restic itself when its command ended.
		if m.at.Before(since) || strings.HasPrefix(strings.TrimPrefix(key, prefix), "locks/") || strings.Contains(key, "/locks/") {
			continue
		}
		if !dryRun {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String(m.version)}); err != nil {
				return res, fmt.Errorf("undelete s3://%s/%s: remove delete marker %s: %w", bucket, key, m.version, err)
			}
		}
		res.Restored = append(res.Restored, key)
	}
	return res, nil
}
