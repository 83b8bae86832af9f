package config

// What the box may do to its backups bucket, in one place: the CDK box role and bucket policy
// (infra/compute.go, infra/storage.go) and the twin's S3 server (a box user under a bucket
// policy) are both rendered from these lists, so the twin proves what production enforces.
//
// The threat (issue 14, finding 3): whoever controls the box holds its credentials. restic
// needs to delete objects (its lock files, packs pruned by forget --prune), so DeleteObject
// stays; on a versioned bucket that only adds a delete marker, and the data stays as a
// noncurrent version for BackupNoncurrentDays. What would end that history is denied
// explicitly: deleting versions, and changing versioning, lifecycle, the policy or object lock.
var (
	// BoxBackupBucketActions are allowed on the bucket itself.
	BoxBackupBucketActions = []string{"s3:ListBucket", "s3:GetBucketLocation"}
	// BoxBackupObjectActions are allowed on every object of the bucket.
	BoxBackupObjectActions = []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
	// BoxBackupDeniedActions are denied to the box on the bucket and its objects, whatever
	// else allows them.
	BoxBackupDeniedActions = []string{
		"s3:DeleteObjectVersion",
		"s3:PutBucketVersioning",
		"s3:PutLifecycleConfiguration",
		"s3:PutBucketPolicy",
		"s3:DeleteBucketPolicy",
		"s3:DeleteBucket",
		"s3:PutBucketObjectLockConfiguration",
		"s3:PutObjectRetention",
		"s3:PutObjectLegalHold",
		"s3:BypassGovernanceRetention",
	}
)

// BackupNoncurrentDays is how long a deleted or overwritten backup object stays recoverable as a
// noncurrent version (the lifecycle rule of the backups bucket). At least 30 days: long enough to
// notice a compromise at the monthly restore drill.
const BackupNoncurrentDays = 35
