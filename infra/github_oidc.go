package main

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// GithubOidcStackProps configure the deploy roles (story 7.1.4/7.1.5 done without secrets).
type GithubOidcStackProps struct {
	awscdk.StackProps
	Env *config.Env
	// Repo is owner/name; only its duty workflows running in the GitHub environment named
	// after the configuration environment (prod) may assume the roles.
	Repo string
	// ProviderArn reuses an existing GitHub OIDC provider; empty creates one.
	ProviderArn string
	Compute     *ComputeStack
	Edge        *EdgeStack
}

// GithubOidcStack holds the OIDC provider and one role per duty: no long-lived keys, and no
// role that can do another duty's work.
type GithubOidcStack struct {
	awscdk.Stack
	// Roles by duty name (DutyRelease, ...).
	Roles map[string]awsiam.Role
	// AmiBuilder is the role of the temporary instance the AMI pipeline provisions through SSM.
	AmiBuilder awsiam.Role
}

// GitHub's OIDC issuer and the audience aws-actions/configure-aws-credentials asks for.
const (
	GitHubIssuerHost = "token.actions.githubusercontent.com"
	GitHubAudience   = "sts.amazonaws.com"
)

// The duties GitHub Actions performs in production, one role each.
const (
	DutyRelease = "release"
	DutySite    = "site"
	DutyInfra   = "infra"
	DutyAmi     = "ami"
	// DutyDiff is infra:diff on pull requests: read-only (it may assume only the CDK lookup
	// role), because a pull request's code, workflow file included, is its author's.
	DutyDiff = "diff"
)

// Duty is one job with its own role: the workflow file allowed to assume it and the refs that
// workflow may run from (job_workflow_ref is "owner/repo/.github/workflows/FILE@REF").
type Duty struct {
	Name, Workflow string
	Refs           []string
	// EnvSuffix names the GitHub environment the job must run in: the configuration
	// environment's name plus this suffix ("" for prod itself).
	EnvSuffix string
}

// GitHubEnvironment is the GitHub environment of duty d in configuration environment env.
func (d Duty) GitHubEnvironment(env string) string { return env + d.EnvSuffix }

// Duties lists every duty in a fixed order (outputs, tests).
//
// Why both claims: sub = repo:R:environment:<env> means only jobs that declared the GitHub
// environment get a token for these roles, and the environment's protection rules (required
// reviewers, deployment refs limited to protected v* tags and main) gate them; the environment
// alone does not say which workflow runs, so job_workflow_ref pins each role to its workflow
// file. A collaborator's new tag-triggered workflow, or a pull request, gets none of the roles.
//
// The refs follow the workflows' triggers (README, "GitHub Actions"): releases on vX.Y.Z tags,
// images on vX.Y.Z-ami tags or by hand from main, site and infra deploys from main; the diff
// role serves pull requests (refs/pull/N/merge) in its own environment without reviewers.
var Duties = []Duty{
	{Name: DutyRelease, Workflow: "release.yml", Refs: []string{"refs/tags/v*"}},
	{Name: DutySite, Workflow: "site.yml", Refs: []string{"refs/heads/main"}},
	{Name: DutyInfra, Workflow: "infra.yml", Refs: []string{"refs/heads/main"}},
	{Name: DutyAmi, Workflow: "ami.yml", Refs: []string{"refs/heads/main", "refs/tags/v*-ami"}},
	{Name: DutyDiff, Workflow: "infra.yml", Refs: []string{"refs/pull/*"}, EnvSuffix: "-diff"},
}

// AmiBuildTag is the tag the AMI pipeline must put on everything it launches and creates
// (instances, images, snapshots); the ami role may stop, terminate, image and deregister only
// what carries it, with the environment name as value.
const AmiBuildTag = "zmanim:ami-build"

// AmiStagingPrefix is where the AMI pipeline stages provisioning files and full command output
// in the releases bucket.
const AmiStagingPrefix = "ami-staging/"

// DutyRoleName is the IAM role name of a duty in env.
func DutyRoleName(env, duty string) string { return "zmanim-" + env + "-github-" + duty }

// DutyOutput is the CloudFormation output holding the role ARN of a duty (ReleaseRoleArn, ...);
// the workflow reads it from the repository variable ZOPS_<DUTY>_ROLE_ARN.
func DutyOutput(duty string) string {
	return string(duty[0]-'a'+'A') + duty[1:] + "RoleArn"
}

// NewGithubOidcStack builds the provider and the duty roles.
func NewGithubOidcStack(scope constructs.Construct, id string, props *GithubOidcStackProps) *GithubOidcStack {
	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	e := props.Env
	account := *stack.Account()
	var providerArn *string
	if props.ProviderArn != "" {
		providerArn = jsii.String(props.ProviderArn)
	} else {
		p := awsiam.NewOidcProviderNative(stack, jsii.String("GitHub"), &awsiam.OidcProviderNativeProps{
			Url:       jsii.String("https://" + GitHubIssuerHost),
			ClientIds: jsii.Strings(GitHubAudience),
		})
		providerArn = p.OidcProviderArn()
	}
	s := &GithubOidcStack{Stack: stack, Roles: map[string]awsiam.Role{}}
	for _, d := range Duties {
		refs := make([]string, len(d.Refs))
		for i, r := range d.Refs {
			refs[i] = props.Repo + "/.github/workflows/" + d.Workflow + "@" + r
		}
		var workflowRef any = refs
		if len(refs) == 1 {
			workflowRef = refs[0]
		}
		s.Roles[d.Name] = awsiam.NewRole(stack, jsii.String(strings.TrimSuffix(DutyOutput(d.Name), "Arn")), &awsiam.RoleProps{
			RoleName:    jsii.String(DutyRoleName(e.Name, d.Name)),
			Description: jsii.String(fmt.Sprintf("GitHub Actions %s of %s in environment %s (.github/workflows/%s)", d.Name, props.Repo, d.GitHubEnvironment(e.Name), d.Workflow)),
			AssumedBy: awsiam.NewWebIdentityPrincipal(providerArn, &map[string]any{
				"StringEquals": map[string]any{
					GitHubIssuerHost + ":aud": GitHubAudience,
					GitHubIssuerHost + ":sub": "repo:" + props.Repo + ":environment:" + d.GitHubEnvironment(e.Name),
				},
				"StringLike": map[string]any{
					GitHubIssuerHost + ":job_workflow_ref": workflowRef,
				},
			}),
			MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
		})
	}
	allow := func(duty, sid string, actions, resources []string, cond map[string]any) {
		p := &awsiam.PolicyStatementProps{Sid: jsii.String(sid), Actions: jsii.Strings(actions...), Resources: jsii.Strings(resources...)}
		if cond != nil {
			p.Conditions = &cond
		}
		s.Roles[duty].AddToPolicy(awsiam.NewPolicyStatement(p))
	}
	bucket := func(name string) []string { return []string{"arn:aws:s3:::" + name, "arn:aws:s3:::" + name + "/*"} }
	objectRW := []string{"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
	// The box is the Auto Scaling group's one instance (its id changes with every
	// replacement): Run Command is allowed on instances carrying the group's tag only.
	instanceArn := fmt.Sprintf("arn:aws:ec2:%s:%s:instance/*", e.Region, account)
	boxOnly := map[string]any{"StringEquals": map[string]any{"ssm:resourceTag/aws:autoscaling:groupName": props.Compute.GroupName}}
	runShell := fmt.Sprintf("arn:aws:ssm:%s::document/AWS-RunShellScript", e.Region)
	commandResults := []string{"ssm:GetCommandInvocation", "ssm:ListCommandInvocations"}
	anyInRegion := fmt.Sprintf("arn:aws:ssm:%s:%s:*", e.Region, account)

	// infra (mage infra:check infra:deploy): CDK deploys through the bootstrap roles (deploy,
	// file publishing, lookup) of this account. Only this role may assume them: they are
	// account admin in effect.
	allow(DutyInfra, "CdkBootstrapRoles", []string{"sts:AssumeRole", "sts:TagSession"},
		[]string{fmt.Sprintf("arn:aws:iam::%s:role/cdk-hnb659fds-*-%s-*", account, account)}, nil)

	// diff (mage infra:diff on pull requests): the CDK lookup role only, which reads the
	// deployed templates (ReadOnlyAccess, KMS decryption denied); CDK falls back to it when the
	// deploy role cannot be assumed.
	allow(DutyDiff, "CdkLookupRole", []string{"sts:AssumeRole", "sts:TagSession"},
		[]string{fmt.Sprintf("arn:aws:iam::%s:role/cdk-hnb659fds-lookup-role-%s-*", account, account)}, nil)

	// release (mage release): its bucket, Run Command on the box only, the command results,
	// and finding the box by its Name tag (DescribeInstances has no resource type).
	allow(DutyRelease, "ReleasesBucket", objectRW, bucket(e.Buckets.Releases), nil)
	allow(DutyRelease, "RestartBox", []string{"ssm:SendCommand"}, []string{instanceArn}, boxOnly)
	allow(DutyRelease, "RunShellDocument", []string{"ssm:SendCommand"}, []string{runShell}, nil)
	allow(DutyRelease, "CommandResults", commandResults, []string{anyInRegion}, nil)
	allow(DutyRelease, "FindBox", []string{"ec2:DescribeInstances"}, []string{"*"},
		map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": e.Region}})

	// site (mage site:sync): the static bucket and invalidations of this distribution.
	allow(DutySite, "StaticBucket", objectRW, bucket(e.Buckets.Static), nil)
	allow(DutySite, "Invalidate", []string{"cloudfront:CreateInvalidation", "cloudfront:GetInvalidation", "cloudfront:ListInvalidations"},
		[]string{fmt.Sprintf("arn:aws:cloudfront::%s:distribution/%s", account, *props.Edge.Distribution.DistributionId())}, nil)

	// ami (mage ami): launch a tagged builder instance from the Amazon Linux image, provision
	// it through Run Command with files staged in S3, image it, record the id (7.2.8), prune
	// old images. Everything it may stop, terminate or delete carries AmiBuildTag=<env>.
	s.AmiBuilder = awsiam.NewRole(stack, jsii.String("AmiBuilderRole"), &awsiam.RoleProps{
		RoleName:    jsii.String("zmanim-" + e.Name + "-ami-builder"),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("ec2.amazonaws.com"), nil),
		Description: jsii.String("temporary AMI build instance: SSM agent, staged files"),
		ManagedPolicies: &[]awsiam.IManagedPolicy{
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("AmazonSSMManagedInstanceCore")),
		},
	})
	staging := "arn:aws:s3:::" + e.Buckets.Releases + "/" + AmiStagingPrefix + "*"
	s.AmiBuilder.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("Staging"), Actions: jsii.Strings("s3:GetObject", "s3:PutObject"), Resources: jsii.Strings(staging),
	}))
	profile := awsiam.NewInstanceProfile(stack, jsii.String("AmiBuilderProfile"), &awsiam.InstanceProfileProps{
		InstanceProfileName: jsii.String("zmanim-" + e.Name + "-ami-builder"),
		Role:                s.AmiBuilder,
	})
	tagged := func(key string) map[string]any {
		return map[string]any{"StringEquals": map[string]any{key + "/" + AmiBuildTag: e.Name}}
	}
	ec2 := func(res string) string { return fmt.Sprintf("arn:aws:ec2:%s:%s:%s", e.Region, account, res) }
	allow(DutyAmi, "Describe", []string{"ec2:DescribeImages", "ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeSnapshots", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeVolumes", "ssm:DescribeInstanceInformation"},
		[]string{"*"}, map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": e.Region}})
	allow(DutyAmi, "LaunchTaggedBuilder", []string{"ec2:RunInstances"}, []string{ec2("instance/*")}, tagged("aws:RequestTag"))
	allow(DutyAmi, "LaunchFrom", []string{"ec2:RunInstances"},
		[]string{fmt.Sprintf("arn:aws:ec2:%s::image/*", e.Region), ec2("subnet/*"), ec2("security-group/*"), ec2("volume/*"), ec2("network-interface/*")}, nil)
	allow(DutyAmi, "TagOnCreate", []string{"ec2:CreateTags"}, []string{ec2("instance/*"), ec2("volume/*"), ec2("network-interface/*"), fmt.Sprintf("arn:aws:ec2:%s::image/*", e.Region), fmt.Sprintf("arn:aws:ec2:%s::snapshot/*", e.Region)},
		map[string]any{"StringEquals": map[string]any{"ec2:CreateAction": []string{"RunInstances", "CreateImage"}}})
	allow(DutyAmi, "OwnBuilders", []string{"ec2:StopInstances", "ec2:TerminateInstances", "ec2:CreateImage"}, []string{ec2("instance/*")}, tagged("ec2:ResourceTag"))
	allow(DutyAmi, "NewImage", []string{"ec2:CreateImage"}, []string{fmt.Sprintf("arn:aws:ec2:%s::image/*", e.Region), fmt.Sprintf("arn:aws:ec2:%s::snapshot/*", e.Region)}, nil)
	allow(DutyAmi, "PruneOwnImages", []string{"ec2:DeregisterImage", "ec2:DeleteSnapshot"}, []string{fmt.Sprintf("arn:aws:ec2:%s::image/*", e.Region), fmt.Sprintf("arn:aws:ec2:%s::snapshot/*", e.Region)}, tagged("ec2:ResourceTag"))
	allow(DutyAmi, "PassBuilderRole", []string{"iam:PassRole"}, []string{*s.AmiBuilder.RoleArn()},
		map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "ec2.amazonaws.com"}})
	allow(DutyAmi, "ProvisionOwnBuilders", []string{"ssm:SendCommand"}, []string{ec2("instance/*")}, tagged("ssm:resourceTag"))
	allow(DutyAmi, "RunShell", []string{"ssm:SendCommand"}, []string{runShell}, nil)
	allow(DutyAmi, "CommandResults", commandResults, []string{anyInRegion}, nil)
	allow(DutyAmi, "Staging", []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}, []string{staging}, nil)
	allow(DutyAmi, "BaseImage", []string{"ssm:GetParameter"}, []string{fmt.Sprintf("arn:aws:ssm:%s::parameter/aws/service/ami-amazon-linux-latest/*", e.Region)}, nil)
	allow(DutyAmi, "RecordAmi", []string{"ssm:PutParameter", "ssm:GetParameter"}, []string{fmt.Sprintf("arn:aws:ssm:%s:%s:parameter%s", e.Region, account, e.Instance.AMIParameter)}, nil)

	// rollout (mage ami:rollout, the same workflow, after the build): read the box's ids, move
	// the box's own Auto Scaling group to the image by an instance refresh, stop the box's
	// services through Run Command on the group's instance only, and take it out of the VPC
	// link's Cloud Map service. Nothing else of the group or of other groups can change.
	allow(DutyAmi, "RolloutDescribe", []string{"autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeInstanceRefreshes"},
		[]string{"*"}, map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": e.Region}})
	allow(DutyAmi, "RolloutRefresh", []string{"autoscaling:StartInstanceRefresh"},
		[]string{fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:*:autoScalingGroupName/%s", e.Region, account, props.Compute.GroupName)}, nil)
	allow(DutyAmi, "RolloutBoxIds", []string{"ssm:GetParameter"}, []string{fmt.Sprintf("arn:aws:ssm:%s:%s:parameter%s/%s", e.Region, account, e.SSMPrefix, ParamBox)}, nil)
	allow(DutyAmi, "RolloutStopBox", []string{"ssm:SendCommand"}, []string{instanceArn}, boxOnly)
	allow(DutyAmi, "RolloutCloudMap", []string{"servicediscovery:DeregisterInstance"}, []string{*props.Compute.BoxService.ServiceArn()}, nil)

	for _, d := range Duties {
		awscdk.NewCfnOutput(stack, jsii.String(DutyOutput(d.Name)), &awscdk.CfnOutputProps{Value: s.Roles[d.Name].RoleArn()})
	}
	awscdk.NewCfnOutput(stack, jsii.String("AmiBuilderProfileName"), &awscdk.CfnOutputProps{Value: profile.InstanceProfileName()})
	return s
}
