//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config

// Package ec2 is the zops-ec2 builder: it launches an instance from the Amazon Linux 2023
// arm64 image named by an SSM public parameter, provisions it through SSM Run Command with
// files and full output staged in S3 (no SSH, no inbound port, no session-manager-plugin:
// the stock builder's SSM tunnel is a long-standing source of hangs), stops it, creates a
// tagged image, publishes the image id to SSM Parameter Store (DataType aws:ec2:image, read
// back until visible: that type is validated asynchronously) and prunes old images of the
// family (never one in use). Every step's Cleanup undoes what its Run made: the instance is
// always terminated, staged objects deleted, and an image of a failed build deregistered.
package ec2

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// DefaultSourceParameter names the latest AL2023 arm64 image.
const DefaultSourceParameter = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"

// Config is the zops-ec2 source block.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// AWS region to build in. Defaults to `us-east-1`.
	Region string `mapstructure:"region"`
	// SSM parameter whose value is the base image id. Defaults to the latest Amazon Linux
	// 2023 arm64 image.
	SourceAMIParameter string `mapstructure:"source_ami_parameter"`
	// A base image id; when set it is used instead of source_ami_parameter.
	SourceAMI string `mapstructure:"source_ami"`
	// Instance type of the build instance. Defaults to `t4g.small`.
	InstanceType string `mapstructure:"instance_type"`
	// Instance profile of the build instance; its role needs AmazonSSMManagedInstanceCore.
	// Uploads and output go through presigned S3 URLs, so it needs no S3 permission.
	InstanceProfile string `mapstructure:"instance_profile" required:"true"`
	// Subnet to launch in; it needs a route to SSM and S3 (internet or VPC endpoints).
	// Default: the default VPC's default subnet.
	SubnetID string `mapstructure:"subnet_id"`
	// Security groups of the build instance. No inbound rule is needed.
	SecurityGroupIDs []string `mapstructure:"security_group_ids"`
	// Size of the root volume in GiB. Defaults to 10.
	RootVolumeGB int32 `mapstructure:"root_volume_gb"`
	// S3 bucket for uploads and full command output; everything staged is deleted afterwards.
	StagingBucket string `mapstructure:"staging_bucket" required:"true"`
	// Key prefix for staged objects. Defaults to `packer-staging/`.
	StagingPrefix string `mapstructure:"staging_prefix"`
	// Image family name: images are named <image_name>-<UTC timestamp> and tagged
	// zops:image=<image_name>; pruning only looks at this family.
	ImageName string `mapstructure:"image_name" required:"true"`
	// Tags on the image and its snapshots (zops:version, zops:commit, zops:recipe-hash, ...).
	ImageTags map[string]string `mapstructure:"image_tags"`
	// Tags on everything the build creates: instance, volumes, network interface, image,
	// snapshots. The deploy role of infra/ only lets the AMI pipeline stop, terminate, image
	// and deregister what carries zmanim:ami-build=<environment>.
	BuildTags map[string]string `mapstructure:"build_tags"`
	// SSM parameter the new image id is published to (DataType aws:ec2:image). Empty: not
	// published.
	ImageParameter string `mapstructure:"image_parameter"`
	// Images of the family kept when pruning (newest first; images in use are never
	// deleted). 0 disables pruning. Defaults to 3.
	KeepImages *int `mapstructure:"keep_images"`
	// How long one provisioning command may run. Defaults to 30m.
	CommandTimeout time.Duration `mapstructure:"command_timeout"`
	// How long to wait for the instance's SSM agent to come online. Defaults to 10m.
	AgentTimeout time.Duration `mapstructure:"agent_timeout"`
	// How long to wait for the image to become available. Defaults to 45m.
	ImageTimeout time.Duration `mapstructure:"image_timeout"`

	ctx interpolate.Context
}

// Prepare decodes and validates the configuration, listing every problem at once.
func (c *Config) Prepare(raws ...interface{}) ([]string, error) {
	if err := config.Decode(c, &config.DecodeOpts{PluginType: BuilderID, Interpolate: true, InterpolateContext: &c.ctx}, raws...); err != nil {
		return nil, err
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Region, "us-east-1")
	def(&c.SourceAMIParameter, DefaultSourceParameter)
	def(&c.InstanceType, "t4g.small")
	def(&c.StagingPrefix, "packer-staging/")
	if !strings.HasSuffix(c.StagingPrefix, "/") {
		c.StagingPrefix += "/"
	}
	if c.RootVolumeGB == 0 {
		c.RootVolumeGB = 10
	}
	if c.KeepImages == nil {
		n := 3
		c.KeepImages = &n
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = 30 * time.Minute
	}
	if c.AgentTimeout == 0 {
		c.AgentTimeout = 10 * time.Minute
	}
	if c.ImageTimeout == 0 {
		c.ImageTimeout = 45 * time.Minute
	}
	var errs *packersdk.MultiError
	add := func(format string, a ...any) { errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, a...)) }
	if c.InstanceProfile == "" {
		add("instance_profile is required: an instance profile whose role has AmazonSSMManagedInstanceCore")
	}
	if c.StagingBucket == "" {
		add("staging_bucket is required: an S3 bucket for uploads and command output (objects are deleted after the build)")
	}
	if c.ImageName == "" {
		add("image_name is required: the image family name, e.g. zmanim-box")
	}
	if c.SourceAMI != "" && !strings.HasPrefix(c.SourceAMI, "ami-") {
		add("source_ami %q is not an image id (ami-...)", c.SourceAMI)
	}
	if !strings.HasPrefix(c.SourceAMIParameter, "/") {
		add("source_ami_parameter %q is not an SSM parameter name (/...)", c.SourceAMIParameter)
	}
	if c.ImageParameter != "" && !strings.HasPrefix(c.ImageParameter, "/") {
		add("image_parameter %q is not an SSM parameter name (/...)", c.ImageParameter)
	}
	if *c.KeepImages < 0 {
		add("keep_images must be 0 (no pruning) or more, got %d", *c.KeepImages)
	}
	if errs != nil && len(errs.Errors) > 0 {
		return nil, errs
	}
	return nil, nil
}

var errNoCredentials = errors.New("no AWS credentials")
