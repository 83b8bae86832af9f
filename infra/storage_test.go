package main

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/shtetl/zmanim-ops/internal/config"
)

func TestStory7_5_1_ThreeBucketsEncryptedPrivateRetained(t *testing.T) {
	buckets := res(PartStorage, "AWS::S3::Bucket")
	if len(buckets) != 3 {
		t.Fatalf("%d buckets", len(buckets))
	}
	names := map[string]bool{}
	for id, b := range buckets {
		p := props(b)
		names[p["BucketName"].(string)] = true
		if !strings.Contains(js(p["BucketEncryption"]), `"SSEAlgorithm":"AES256"`) {
			t.Errorf("%s: encryption %v", id, js(p["BucketEncryption"]))
		}
		if js(p["PublicAccessBlockConfiguration"]) != `{"BlockPublicAcls":true,"BlockPublicPolicy":true,"IgnorePublicAcls":true,"RestrictPublicBuckets":true}` {
			t.Errorf("%s: public access %v", id, js(p["PublicAccessBlockConfiguration"]))
		}
		if b["DeletionPolicy"] != "Retain" {
			t.Errorf("%s: deletion policy %v", id, b["DeletionPolicy"])
		}
	}
	for _, n := range cfg.Buckets.All() {
		if !names[n] {
			t.Errorf("bucket %s missing", n)
		}
	}
	// Old releases expire (noncurrent versions after OldReleaseDays); the current one never does.
	has(t, PartStorage, "AWS::S3::Bucket", map[string]any{"BucketName": cfg.Buckets.Releases,
		"VersioningConfiguration": map[string]any{"Status": "Enabled"},
		"LifecycleConfiguration": map[string]any{"Rules": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
			"NoncurrentVersionExpiration": map[string]any{"NoncurrentDays": OldReleaseDays}, "Status": "Enabled"})})}})
	if strings.Contains(js(res(PartStorage, "AWS::S3::Bucket")), `"ExpirationInDays"`) {
		t.Errorf("a bucket expires current objects")
	}
}

// 7.5.2: bucket policies allow the box through the VPC endpoint and refuse plain HTTP; the
// static bucket is read only by the distribution (origin access control).
func TestStory7_5_2_BucketPolicies(t *testing.T) {
	policies := res(PartStorage, "AWS::S3::BucketPolicy")
	if len(policies) != 3 {
		t.Fatalf("%d bucket policies", len(policies))
	}
	bucketOf := func(p map[string]any) string {
		ref := js(props(p)["Bucket"])
		for id, b := range res(PartStorage, "AWS::S3::Bucket") {
			if strings.Contains(ref, id) {
				return props(b)["BucketName"].(string)
			}
		}
		return ref
	}
	for _, p := range policies {
		name := bucketOf(p)
		stmts := asList(props(p)["PolicyDocument"].(map[string]any)["Statement"])
		var tlsDeny, viaEndpoint, cloudfront bool
		for _, s := range stmts {
			m := s.(map[string]any)
			c := js(m["Condition"])
			switch {
			case m["Effect"] == "Deny" && strings.Contains(c, `"aws:SecureTransport":"false"`):
				tlsDeny = true
			case m["Effect"] == "Allow" && strings.Contains(c, "aws:SourceVpce"):
				if !strings.Contains(c, "zmanim-prod-network") || !strings.Contains(js(m["Principal"]), "BoxRole") {
					t.Errorf("%s: endpoint statement %s", name, js(m))
				}
				viaEndpoint = true
			case m["Effect"] == "Allow" && strings.Contains(js(m["Principal"]), "cloudfront.amazonaws.com"):
				cloudfront = true
				if !strings.Contains(c, "AWS:SourceArn") || !strings.Contains(c, "Distribution") || js(m["Action"]) != `"s3:GetObject"` {
					t.Errorf("%s: CloudFront statement %v", name, js(m))
				}
			case m["Effect"] == "Allow":
				t.Errorf("%s: unexpected allow %v", name, js(m))
			}
		}
		if !tlsDeny {
			t.Errorf("%s: no TLS-only deny", name)
		}
		switch name {
		case cfg.Buckets.Static:
			if !cloudfront || viaEndpoint {
				t.Errorf("%s: cloudfront=%v endpoint=%v, want CloudFront only", name, cloudfront, viaEndpoint)
			}
		default:
			if !viaEndpoint || cloudfront {
				t.Errorf("%s: endpoint=%v cloudfront=%v, want the box via the endpoint", name, viaEndpoint, cloudfront)
			}
		}
	}
}

// Finding 3 (issue 14): a compromised box could delete every backup (s3:DeleteObject on an
// unversioned bucket). The backups bucket is versioned and keeps noncurrent versions at least
// 30 days; the box role and the bucket policy deny deleting versions and changing versioning,
// lifecycle, policy or object lock; restic keeps DeleteObject (its locks, pruned packs).
func TestBackupsBucketVersionedAndBoxCannotDestroyHistory(t *testing.T) {
	if config.BackupNoncurrentDays < 30 {
		t.Fatalf("noncurrent versions kept %d days, want >= 30", config.BackupNoncurrentDays)
	}
	has(t, PartStorage, "AWS::S3::Bucket", map[string]any{"BucketName": cfg.Buckets.Backups,
		"VersioningConfiguration": map[string]any{"Status": "Enabled"},
		"LifecycleConfiguration": map[string]any{"Rules": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
			"NoncurrentVersionExpiration": map[string]any{"NoncurrentDays": config.BackupNoncurrentDays}, "Status": "Enabled"})})}})

	denied := func(stmts []any, where string) {
		t.Helper()
		for _, s := range stmts {
			m := s.(map[string]any)
			if m["Effect"] != "Deny" || !strings.Contains(js(m["Resource"]), "Backups") && !strings.Contains(js(m["Resource"]), cfg.Buckets.Backups) {
				continue
			}
			for _, a := range config.BoxBackupDeniedActions {
				if !strings.Contains(js(m["Action"]), `"`+a+`"`) {
					t.Errorf("%s: deny lacks %s: %s", where, a, js(m))
				}
			}
			if !strings.Contains(js(m["Resource"]), "/*") {
				t.Errorf("%s: deny does not cover the objects: %s", where, js(m["Resource"]))
			}
			return
		}
		t.Errorf("%s: no deny of history-destroying actions on the backups bucket", where)
	}
	// The box role: allowed actions exclude every denied one, and the explicit deny is there.
	var boxStmts []any
	for id, p := range res(PartCompute, "AWS::IAM::Policy") {
		if strings.Contains(js(props(p)["Roles"]), "BoxRole") {
			boxStmts = append(boxStmts, asList(props(p)["PolicyDocument"].(map[string]any)["Statement"])...)
			_ = id
		}
	}
	for _, s := range boxStmts {
		m := s.(map[string]any)
		if m["Effect"] != "Allow" {
			continue
		}
		for _, a := range append([]string{"s3:*", "s3:Delete*", "s3:Put*"}, config.BoxBackupDeniedActions...) {
			if strings.Contains(js(m["Action"]), `"`+a+`"`) {
				t.Errorf("box role allows %s: %s", a, js(m))
			}
		}
	}
	denied(boxStmts, "box role")
	// The bucket policy: the same deny, for the box role.
	for _, p := range res(PartStorage, "AWS::S3::BucketPolicy") {
		stmts := asList(props(p)["PolicyDocument"].(map[string]any)["Statement"])
		if !strings.Contains(js(props(p)["Bucket"]), "Backups") {
			continue
		}
		for _, s := range stmts {
			m := s.(map[string]any)
			if m["Effect"] == "Deny" && strings.Contains(js(m["Principal"]), "BoxRole") {
				denied([]any{s}, "backups bucket policy")
				return
			}
		}
		t.Errorf("backups bucket policy has no deny for the box role: %s", js(stmts))
	}
}

// Finding 5 (issue 14): CloudFront may not read the site deploy's records from the bucket.
func TestStaticBucketDeniesCloudFrontTheSiteRecords(t *testing.T) {
	for _, p := range res(PartStorage, "AWS::S3::BucketPolicy") {
		if !strings.Contains(js(props(p)["Bucket"]), "Static") {
			continue
		}
		for _, s := range asList(props(p)["PolicyDocument"].(map[string]any)["Statement"]) {
			m := s.(map[string]any)
			if m["Effect"] == "Deny" && strings.Contains(js(m["Principal"]), "cloudfront.amazonaws.com") &&
				js(m["Action"]) == `"s3:GetObject"` && strings.Contains(js(m["Resource"]), "/"+config.SitePrivateDir+"/*") {
				return
			}
		}
		t.Fatalf("static bucket policy lets CloudFront read /%s/", config.SitePrivateDir)
	}
	t.Fatal("no static bucket policy")
}
