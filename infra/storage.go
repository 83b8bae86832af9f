package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// StorageStackProps configure the three buckets (story 7.5).
type StorageStackProps struct {
	awscdk.StackProps
	Env     *config.Env
	Network *NetworkStack
	Compute *ComputeStack
	// DistributionArn is the only reader of the static bucket (origin access control).
	DistributionArn *string
}

// StorageStack holds the backups, releases and static buckets: SSE-S3 (AES-256) encryption,
// all public access blocked, TLS-only policies, retained on stack deletion.
type StorageStack struct {
	awscdk.Stack
	Backups, Releases, Static awss3.Bucket
}

// Lifecycle settings.
const (
	// OldReleaseDays: a release object overwritten or deleted (mage release prunes to
	// release.keep) stays recoverable as a noncurrent version this long.
	OldReleaseDays = 30
	// AbortUploadDays cleans up multipart uploads a crash left behind.
	AbortUploadDays = 7
)

// NewStorageStack builds the buckets.
func NewStorageStack(scope constructs.Construct, id string, props *StorageStackProps) *StorageStack {
	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	e := props.Env
	abort := &awss3.LifecycleRule{Id: jsii.String("abort-incomplete-uploads"), AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(AbortUploadDays))}
	bucket := func(cid, name string, versioned bool, rules ...*awss3.LifecycleRule) awss3.Bucket {
		return awss3.NewBucket(stack, jsii.String(cid), &awss3.BucketProps{
			BucketName:        jsii.String(name),
			Encryption:        awss3.BucketEncryption_S3_MANAGED,
			BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
			EnforceSSL:        jsii.Bool(true),
			MinimumTLSVersion: jsii.Number(1.2),
			ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
			Versioned:         jsii.Bool(versioned),
			LifecycleRules:    &rules,
			RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		})
	}
	s := &StorageStack{Stack: stack}
	// restic manages its own retention (forget --keep-daily, prune): no expiry of current
	// objects. The bucket is versioned so that what the box deletes (it must: restic removes
	// its locks and pruned packs) stays recoverable for config.BackupNoncurrentDays; the box
	// may not delete versions nor change versioning or this lifecycle (see compute.go).
	s.Backups = bucket("Backups", e.Buckets.Backups, true, abort, &awss3.LifecycleRule{
		Id:                          jsii.String("keep-deleted-backups"),
		NoncurrentVersionExpiration: awscdk.Duration_Days(jsii.Number(config.BackupNoncurrentDays)),
		ExpiredObjectDeleteMarker:   jsii.Bool(true),
	})
	s.Releases = bucket("Releases", e.Buckets.Releases, true, abort, &awss3.LifecycleRule{
		Id:                          jsii.String("expire-old-releases"),
		NoncurrentVersionExpiration: awscdk.Duration_Days(jsii.Number(OldReleaseDays)),
		ExpiredObjectDeleteMarker:   jsii.Bool(true),
	})
	s.Static = bucket("Static", e.Buckets.Static, false, abort)

	// 7.5.2: the box reaches its buckets through the S3 gateway endpoint; the policies name it.
	vpce := props.Network.S3Endpoint.VpcEndpointId()
	viaEndpoint := func(b awss3.Bucket, sid string, actions []string, objects bool) {
		res := []*string{b.BucketArn()}
		if objects {
			res = append(res, b.ArnForObjects(jsii.String("*")))
		}
		b.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String(sid),
			Principals: &[]awsiam.IPrincipal{awsiam.NewArnPrincipal(props.Compute.Role.RoleArn())},
			Actions:    jsii.Strings(actions...),
			Resources:  &res,
			Conditions: &map[string]any{"StringEquals": map[string]any{"aws:SourceVpce": vpce}},
		}))
	}
	viaEndpoint(s.Backups, "BoxBackupsViaEndpoint", append(append([]string{}, config.BoxBackupBucketActions...), config.BoxBackupObjectActions...), true)
	// The same denial as on the box role, on the bucket: it holds even if someone widens the
	// role later.
	s.Backups.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("BoxCannotDestroyHistory"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewArnPrincipal(props.Compute.Role.RoleArn())},
		Actions:    jsii.Strings(config.BoxBackupDeniedActions...),
		Resources:  jsii.Strings(*s.Backups.BucketArn(), *s.Backups.ArnForObjects(jsii.String("*"))),
	}))
	viaEndpoint(s.Releases, "BoxReleasesViaEndpoint", []string{"s3:ListBucket", "s3:GetObject"}, true)

	// 7.6 / origin access control: only this distribution reads the static bucket.
	s.Static.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudFrontReadsStatic"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudfront.amazonaws.com"), nil)},
		Actions:    jsii.Strings("s3:GetObject"),
		Resources:  jsii.Strings(*s.Static.ArnForObjects(jsii.String("*"))),
		Conditions: &map[string]any{"StringEquals": map[string]any{"AWS:SourceArn": props.DistributionArn}},
	}))
	// The deploy's own records (manifest, lock, pending invalidations) are not part of the site:
	// the directory-index function already answers 404 for them; this holds even for a
	// behavior without the function.
	s.Static.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudFrontNeverReadsSiteRecords"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudfront.amazonaws.com"), nil)},
		Actions:    jsii.Strings("s3:GetObject"),
		Resources:  jsii.Strings(*s.Static.ArnForObjects(jsii.String(config.SitePrivateDir + "/*"))),
	}))
	for _, b := range []struct {
		id string
		b  awss3.Bucket
	}{{"BackupsBucket", s.Backups}, {"ReleasesBucket", s.Releases}, {"StaticBucket", s.Static}} {
		awscdk.NewCfnOutput(stack, jsii.String(b.id), &awscdk.CfnOutputProps{Value: b.b.BucketName()})
	}
	return s
}
