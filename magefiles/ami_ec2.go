package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/ami/amitarget"
)

// Ec2 builds the box's Amazon Linux 2023 arm64 image on EC2 with the project's Packer plugin (zops-ec2) and publishes its id (also `mage ami`).
//
// Launches a tagged build instance from the latest AL2023 arm64 image, uploads the staging
// directory and packer/recipe, runs the recipe over SSM Run Command (files and full output
// through S3 under ami-staging/ in the releases bucket), stops it, creates the image tagged
// with version, commit and recipe hash, publishes the id to instance.ami_parameter and prunes
// images beyond the newest ZOPS_AMI_KEEP that nothing uses. The instance is always
// terminated. Refuses on the local twin and without AWS credentials, with nothing changed.
//
// Options (environment):
//
//	ZOPS_ENV                   environment (must be an AWS one, e.g. prod)
//	ZOPS_AMI_FILES_DIR         staging directory with the box's binaries and units (default: staged
//	                           for instance.arch into .state/box/files-<arch>, as ami:local does)
//	ZOPS_AMI_INSTANCE_PROFILE  build instance profile (default zmanim-<env>-ami-builder)
//	ZOPS_AMI_SUBNET_ID         subnet of the build instance (default: the default VPC's)
//	ZOPS_AMI_KEEP              images kept when pruning (default 3)
func (Ami) Ec2(ctx context.Context) error {
	return amitarget.BuildTarget(ctx, os.Stdout)
}

// List shows the box's images with their tags, which one the AMI parameter points at and which instances use them.
//
// Options (environment): ZOPS_ENV (an AWS environment; the local twin has no images).
func (Ami) List(ctx context.Context) error {
	return amitarget.ListTarget(ctx, os.Stdout)
}

// Prune deletes the box's images beyond the newest ZOPS_AMI_KEEP, with their snapshots, never one in use.
//
// An image that an instance (running or stopped) or the AMI parameter uses is never deleted.
// With ZOPS_AMI_DELETE it deletes exactly the images named there and refuses the whole request
// (deleting nothing) if any of them is in use.
//
// Options (environment):
//
//	ZOPS_ENV          an AWS environment
//	ZOPS_AMI_KEEP     images kept (default 3)
//	ZOPS_AMI_DELETE   comma-separated image ids to delete instead
//	ZOPS_DRY_RUN=1    show what would be deleted, delete nothing
func (Ami) Prune(ctx context.Context) error {
	return amitarget.PruneTarget(ctx, os.Stdout)
}
