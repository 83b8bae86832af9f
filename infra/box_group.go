package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/jsii-runtime-go"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// Who replaces the box (infra/README.md): an Auto Scaling group of exactly one instance, in
// the data volume's subnet only, from a launch template whose image EC2 resolves from the SSM
// image parameter at launch. Every way an instance gets replaced terminates the old one
// first, so the volume is free when the new one asks for it:
//   - a lost or impaired instance: the group's EC2 health check replaces it (the instance
//     maintenance policy, min healthy 0 / max healthy 100, terminates before it launches);
//   - an AMI rollout (`mage ami:rollout`): an instance refresh with the same percentages;
//   - a CloudFormation change of the launch template: the rolling-update policy, at most one
//     instance, none kept in service.
// The stack owns no instance, volume attachment, address association or Cloud Map instance,
// so nothing in it points at an old box; the new box claims the volume (waiting while the old
// one still holds it), the Elastic IP and its Cloud Map entry at first boot
// (internal/firstboot/claim), with a role that may do so only for the group's instances.

// GroupName is the box's Auto Scaling group. It is fixed: CloudFormation cannot then create
// a second group next to the first (a replacement fails on the name instead), and ami:rollout
// finds it (internal/rollout.GroupName, kept equal by a test).
func GroupName(env string) string { return "zmanim-" + env + "-box" }

// ParamBox is the SSM parameter (under the prefix) with the ids the box claims at first boot:
// data volume, Elastic IP allocation, Cloud Map service, zone and API port (claim.Params).
const ParamBox = "box"

// DataVolumeTag marks the data volume (value: the environment); the box's attach permission
// is conditioned on it.
const DataVolumeTag = "zmanim:data"

// groupTag is the tag Auto Scaling puts on every instance it launches.
const groupTag = "aws:autoscaling:groupName"

func newBoxGroup(stack awscdk.Stack, c *ComputeStack, e *config.Env, props *ComputeStackProps, userData string) {
	region, account := e.Region, *stack.Account()
	root := &awsec2.BlockDevice{
		DeviceName: jsii.String(RootDevice),
		Volume: awsec2.BlockDeviceVolume_Ebs(jsii.Number(float64(e.Instance.RootVolumeGB)), &awsec2.EbsDeviceOptions{
			VolumeType:          awsec2.EbsDeviceVolumeType_GP3,
			Encrypted:           jsii.Bool(true),
			DeleteOnTermination: jsii.Bool(true), // disposable: everything lasting is on /data
		}),
	}
	// Only the root volume is in the template: the data volume is never created or deleted
	// with an instance.
	c.LaunchTemplate = awsec2.NewLaunchTemplate(stack, jsii.String("BoxTemplate"), &awsec2.LaunchTemplateProps{
		LaunchTemplateName: jsii.String(GroupName(e.Name)),
		InstanceType:       awsec2.NewInstanceType(jsii.String(e.Instance.Type)),
		// resolve:ssm: EC2 reads the image parameter (written by the AMI pipeline, 7.2.8) at
		// each launch, so a rollout changes the parameter and refreshes, with no stack change.
		MachineImage:            awsec2.MachineImage_ResolveSsmParameterAtLaunch(jsii.String(e.Instance.AMIParameter), &awsec2.SsmParameterImageOptions{Os: awsec2.OperatingSystemType_LINUX}),
		SecurityGroup:           props.Network.BoxSG,
		Role:                    c.Role,
		HttpTokens:              awsec2.LaunchTemplateHttpTokens_REQUIRED, // IMDSv2 only
		HttpPutResponseHopLimit: jsii.Number(1),
		DetailedMonitoring:      jsii.Bool(false), // basic 5-minute metrics (spec open question 3)
		EbsOptimized:            jsii.Bool(true),
		BlockDevices:            &[]*awsec2.BlockDevice{root},
		UserData:                awsec2.UserData_Custom(jsii.String(userData)),
	})
	// The volume's subnet only: a box elsewhere could never attach it.
	subnets := props.Network.Vpc.SelectSubnets(&awsec2.SubnetSelection{
		SubnetType:        awsec2.SubnetType_PUBLIC,
		AvailabilityZones: jsii.Strings(props.AvailabilityZone),
	})
	c.Group = awsautoscaling.NewAutoScalingGroup(stack, jsii.String("BoxGroup"), &awsautoscaling.AutoScalingGroupProps{
		AutoScalingGroupName: jsii.String(c.GroupName),
		Vpc:                  props.Network.Vpc,
		VpcSubnets:           &awsec2.SubnetSelection{Subnets: subnets.Subnets},
		LaunchTemplate:       c.LaunchTemplate,
		MinCapacity:          jsii.Number(1),
		MaxCapacity:          jsii.Number(1),
		// Instance maintenance policy: replacing an unhealthy instance or refreshing terminates
		// the old instance before the new one is launched (never two boxes).
		MinHealthyPercentage: jsii.Number(0),
		MaxHealthyPercentage: jsii.Number(100),
		HealthChecks:         awsautoscaling.HealthChecks_Ec2(&awsautoscaling.Ec2HealthChecksOptions{GracePeriod: awscdk.Duration_Minutes(jsii.Number(10))}),
		// A CloudFormation change of the template replaces the box the same way.
		UpdatePolicy: awsautoscaling.UpdatePolicy_RollingUpdate(&awsautoscaling.RollingUpdateOptions{
			MaxBatchSize: jsii.Number(1), MinInstancesInService: jsii.Number(0),
		}),
		// A forced delete (which terminates the instance with the group) is refused.
		DeletionProtection: awsautoscaling.DeletionProtection_PREVENT_FORCE_DELETION,
	})
	// The release's SSM deployer and the agent's dimensions find the box by these tags.
	awscdk.Tags_Of(c.Group).Add(jsii.String("Name"), jsii.String(BoxNameTag(e.Name)), nil)
	awscdk.Tags_Of(c.DataVolume).Add(jsii.String(DataVolumeTag), jsii.String(e.Name), nil)
	awscdk.Validations_Of(c.DataVolume).Acknowledge(&awscdk.Acknowledgment{Id: jsii.String("CloudFormation-Validate::W3010"), Reason: jsii.String("the data volume and the box's subnet must share one availability zone")})

	// First boot's claim: attach the data volume (tagged) to an instance of this group, move
	// the Elastic IP to one, register in the box's Cloud Map service. Each action needs both
	// its resources allowed; instances are matched by the tag Auto Scaling puts on them.
	instances := fmt.Sprintf("arn:aws:ec2:%s:%s:instance/*", region, account)
	ofGroup := map[string]any{"StringEquals": map[string]any{"aws:ResourceTag/" + groupTag: c.GroupName}}
	c.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("ClaimAsGroupInstance"),
		Actions:    jsii.Strings("ec2:AttachVolume", "ec2:AssociateAddress"),
		Resources:  jsii.Strings(instances),
		Conditions: &ofGroup,
	}))
	c.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("ClaimDataVolume"),
		Actions:    jsii.Strings("ec2:AttachVolume"),
		Resources:  jsii.Strings(fmt.Sprintf("arn:aws:ec2:%s:%s:volume/%s", region, account, *c.DataVolume.VolumeId())),
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:ResourceTag/" + DataVolumeTag: e.Name}},
	}))
	c.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ClaimElasticIp"),
		Actions:   jsii.Strings("ec2:AssociateAddress"),
		Resources: jsii.Strings(fmt.Sprintf("arn:aws:ec2:%s:%s:elastic-ip/%s", region, account, *c.EIP.AttrAllocationId())),
	}))
	c.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("ClaimDescribe"),
		Actions:    jsii.Strings("ec2:DescribeVolumes"),
		Resources:  jsii.Strings("*"), // DescribeVolumes has no resource type; scoped by region
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": region}},
	}))
	c.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ClaimCloudMap"),
		Actions:   jsii.Strings("servicediscovery:RegisterInstance"),
		Resources: jsii.Strings(*c.BoxService.ServiceArn()),
	}))

	awsssm.NewStringParameter(stack, jsii.String("BoxParam"), &awsssm.StringParameterProps{
		ParameterName: jsii.String(e.SSM(ParamBox)),
		StringValue: stack.ToJsonString(map[string]any{
			"volume_id": c.DataVolume.VolumeId(), "allocation_id": c.EIP.AttrAllocationId(), "service_id": c.BoxService.ServiceId(),
			"availability_zone": props.AvailabilityZone, "port": e.Instance.Port, "device": DataDevice,
		}, nil),
		Description: jsii.String("what the zmanim box claims at first boot (internal/firstboot/claim)"),
		Tier:        awsssm.ParameterTier_STANDARD,
	})
}
