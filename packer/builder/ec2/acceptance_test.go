package ec2

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// TestAcceptance builds a real image on AWS with a trivial recipe and deletes it again.
// Gated: ZOPS_AWS_ACCEPTANCE=1 with credentials for an account, plus
//
//	ZOPS_ACC_INSTANCE_PROFILE  an instance profile with AmazonSSMManagedInstanceCore
//	ZOPS_ACC_STAGING_BUCKET    a bucket the credentials can put/get/delete in
//	ZOPS_ACC_REGION            (default us-east-1), ZOPS_ACC_SUBNET_ID (optional)
//
// It costs a few cents (a t4g.small for ~10 minutes, one snapshot briefly). It publishes to
// no parameter and prunes nothing but its own family.
func TestAcceptance(t *testing.T) {
	if os.Getenv("ZOPS_AWS_ACCEPTANCE") != "1" {
		t.Skip("real AWS: set ZOPS_AWS_ACCEPTANCE=1")
	}
	region := os.Getenv("ZOPS_ACC_REGION")
	if region == "" {
		region = "us-east-1"
	}
	b := &Builder{}
	_, _, err := b.Prepare(map[string]interface{}{
		"region":           region,
		"instance_profile": os.Getenv("ZOPS_ACC_INSTANCE_PROFILE"),
		"staging_bucket":   os.Getenv("ZOPS_ACC_STAGING_BUCKET"),
		"subnet_id":        os.Getenv("ZOPS_ACC_SUBNET_ID"),
		"image_name":       "zops-acceptance",
		"keep_images":      1,
		"image_tags":       map[string]string{"zops:version": "acceptance"},
	})
	if err != nil {
		t.Fatal(err)
	}
	hook := &provisionHook{filesDir: t.TempDir(), dst: "/tmp/zops", script: "set -e; . /etc/os-release; echo \"acceptance on $ID $VERSION_ID $(uname -m)\"; test \"$ID\" = amzn"}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	art, err := b.Run(ctx, &recUI{}, hook)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, hook.output.String())
	}
	defer func() {
		if err := art.Destroy(); err != nil {
			t.Error(err)
		}
	}()
	if !strings.Contains(hook.output.String(), "acceptance on amzn 2023 aarch64") {
		t.Errorf("recipe output: %q", hook.output.String())
	}
	var _ packersdk.Artifact = art
}
