package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// GithubOidcStackProps configure the deploy role (story 7.1.4/7.1.5 done without secrets).
type GithubOidcStackProps struct {
	awscdk.StackProps
	Env *config.Env
	// Repo is owner/name; only its workflows running for a tag may assume the role.
	Repo string
	// ProviderArn reuses an existing GitHub OIDC provider; empty creates one.
	ProviderArn string
	Compute     *ComputeStack
	Edge        *EdgeStack
}

// GithubOidcStack holds the OIDC provider and the role GitHub Actions assumes: no long-lived keys.
type GithubOidcStack struct {
	awscdk.Stack
	Role awsiam.Role
}

// GitHub's OIDC issuer and the audience aws-actions/configure-aws-credentials asks for.
const (
	GitHubIssuerHost = "token.actions.githubusercontent.com"
	GitHubAudience   = "sts.amazonaws.com"
)

// NewGithubOidcStack builds the provider and the role.
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
	role := awsiam.NewRole(stack, jsii.String("DeployRole"), &awsiam.RoleProps{
		RoleName:    jsii.String("zmanim-" + e.Name + "-github-deploy"),
		Description: jsii.String("GitHub Actions of " + props.Repo + " on tags: CDK deploy, releases, site sync"),
		AssumedBy: awsiam.NewWebIdentityPrincipal(providerArn, &map[string]any{
			"StringEquals": map[string]any{GitHubIssuerHost + ":aud": GitHubAudience},
			"StringLike":   map[string]any{GitHubIssuerHost + ":sub": "repo:" + props.Repo + ":ref:refs/tags/*"},
		}),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	// CDK deploys through the bootstrap roles (deploy, file publishing, lookup) of this account.
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("CdkBootstrapRoles"),
		Actions:   jsii.Strings("sts:AssumeRole", "sts:TagSession"),
		Resources: jsii.Strings(fmt.Sprintf("arn:aws:iam::%s:role/cdk-hnb659fds-*-%s-*", account, account)),
	}))
	// Releases (mage release) and the static site (mage site:sync).
	for _, b := range []string{e.Buckets.Releases, e.Buckets.Static} {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
			Resources: jsii.Strings("arn:aws:s3:::"+b, "arn:aws:s3:::"+b+"/*"),
		}))
	}
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("Invalidate"),
		Actions:   jsii.Strings("cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"),
		Resources: jsii.Strings(fmt.Sprintf("arn:aws:cloudfront::%s:distribution/%s", account, *props.Edge.Distribution.DistributionId())),
	}))
	// Release path 2: SSM Run Command on the box only.
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:     jsii.String("RestartBox"),
		Actions: jsii.Strings("ssm:SendCommand"),
		Resources: jsii.Strings(
			fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", e.Region, account, *props.Compute.Instance.InstanceId()),
			fmt.Sprintf("arn:aws:ssm:%s::document/AWS-RunShellScript", e.Region)),
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("CommandResults"),
		Actions:   jsii.Strings("ssm:GetCommandInvocation", "ssm:ListCommandInvocations"),
		Resources: jsii.Strings(fmt.Sprintf("arn:aws:ssm:%s:%s:*", e.Region, account)),
	}))
	// The AMI pipeline records the new image id (7.2.8).
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("RecordAmi"),
		Actions:   jsii.Strings("ssm:PutParameter", "ssm:GetParameter"),
		Resources: jsii.Strings(fmt.Sprintf("arn:aws:ssm:%s:%s:parameter%s", e.Region, account, e.Instance.AMIParameter)),
	}))
	awscdk.NewCfnOutput(stack, jsii.String("DeployRoleArn"), &awscdk.CfnOutputProps{Value: role.RoleArn()})
	return &GithubOidcStack{Stack: stack, Role: role}
}
