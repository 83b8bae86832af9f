package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// applyNag adds the cdk-nag AwsSolutions checks to every stack, with the suppressions below.
// The pack writes AwsSolutions-<stack>-NagReport.json into the assembly; NagFindings reads them.
func applyNag(app awscdk.App, s *Stacks) {
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{
		Verbose:       jsii.Bool(true),
		Reports:       jsii.Bool(true),
		ReportFormats: &[]cdknag.NagReportFormat{cdknag.NagReportFormat_JSON},
	}), nil)
	suppress(s)
}

// suppression is one accepted finding: the rule, why it is accepted, and optionally the
// findings (IAM wildcards, managed policies) it covers.
type suppression struct {
	id, reason string
	appliesTo  []string
}

func toNag(ss []suppression) *[]*cdknag.NagPackSuppression {
	out := make([]*cdknag.NagPackSuppression, 0, len(ss))
	for _, s := range ss {
		n := &cdknag.NagPackSuppression{Id: jsii.String(s.id), Reason: jsii.String(s.reason)}
		if len(s.appliesTo) > 0 {
			a := make([]any, len(s.appliesTo))
			for i, v := range s.appliesTo {
				a[i] = v
			}
			n.AppliesTo = &a
		}
		out = append(out, n)
	}
	return &out
}

// suppress records the accepted findings; every one carries its reason.
func suppress(s *Stacks) {
	e := s.Compute.Stack
	region := *e.Region()
	res := func(arns ...string) []string {
		out := make([]string, len(arns))
		for i, a := range arns {
			out[i] = "Resource::" + a
		}
		return out
	}
	cdknag.NagSuppressions_AddResourceSuppressions(s.Compute.Role, toNag([]suppression{
		{id: "AwsSolutions-IAM4", reason: "AmazonSSMManagedInstanceCore is the documented minimum for the SSM agent (Session Manager, Run Command used by release path 2); AWS keeps it current with the agent",
			appliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"}},
		{id: "AwsSolutions-IAM5", reason: "object-level wildcards are limited to the box's own buckets and prefixes: restic writes and prunes arbitrary pack names under backups, releases are read by version path, parameters and log groups are scoped to /zmanim/<env>/; PutMetricData and DescribeTags have no resource type and are scoped by namespace / region conditions",
			appliesTo: append(res("*", "arn:aws:logs:"+region+":<AWS::AccountId>:log-group:/zmanim/"+s.env+"/*",
				"arn:aws:ec2:"+region+":<AWS::AccountId>:instance/*",
				"arn:aws:ssm:"+region+":<AWS::AccountId>:parameter"+s.ssmPrefix+"/*"),
				"Resource::arn:aws:s3:::"+s.buckets.Backups+"/*", "Resource::arn:aws:s3:::"+s.buckets.Releases+"/*")},
	}), jsii.Bool(true))
	cdknag.NagSuppressions_AddResourceSuppressions(s.Compute.Group, toNag([]suppression{
		{id: "AwsSolutions-EC28", reason: "basic 5-minute EC2 metrics are enough for the 5-minute CPU alarm; detailed monitoring costs about $2/month (spec open question 3: start basic); memory and disk come from the CloudWatch agent"},
		{id: "AwsSolutions-AS3", reason: "a group of one whose replacements are announced by the status-check, health-check and backup alarms to the same SNS topic; scaling notifications would repeat them"},
	}), jsii.Bool(true))
	cdknag.NagSuppressions_AddResourceSuppressions(s.Network.Vpc, toNag([]suppression{
		{id: "AwsSolutions-VPC7", reason: "one instance, no NAT: security-group changes are audited by CloudTrail and API access is logged by API Gateway; flow logs would add CloudWatch Logs ingestion for no second consumer (budget $44)"},
	}), jsii.Bool(true))
	cdknag.NagSuppressions_AddResourceSuppressions(s.Edge.Api, toNag([]suppression{
		{id: "AwsSolutions-APIG4", reason: "GET /health and ANY /api/{proxy+} are public by the spec (zmanim, cities, publishers); /api/publisher/* and /api/admin/* carry the Clerk JWT authorizer, tested in edge_test.go"},
	}), jsii.Bool(true))
	cdknag.NagSuppressions_AddResourceSuppressions(s.Edge.Distribution, toNag([]suppression{
		{id: "AwsSolutions-CFR1", reason: "a public prayer-times site for users worldwide: no geo restriction"},
		{id: "AwsSolutions-CFR2", reason: "WAF is out of scope in the spec (basic CloudFront security only); the HTTP API throttles at 500 req/s, burst 1000"},
		{id: "AwsSolutions-CFR3", reason: "CloudFront standard logs need an ACL-enabled log bucket and cost storage; API requests are logged by the API Gateway access log, cache behaviour is on the dashboard"},
	}), jsii.Bool(true))
	for _, b := range []awss3.Bucket{s.Storage.Backups, s.Storage.Releases, s.Storage.Static} {
		cdknag.NagSuppressions_AddResourceSuppressions(b, toNag([]suppression{
			{id: "AwsSolutions-S1", reason: "server access logs would need a fourth bucket and storage; the buckets are private (block public access, TLS-only, VPC-endpoint and OAC policies) and written only by the box role and the GitHub duty roles"},
		}), jsii.Bool(true))
	}
	// The duty roles: every wildcard is scoped to the duty's own bucket, distribution, tagged
	// resources or region; see github_oidc.go for each statement's reason.
	oidc := map[string]string{
		DutyInfra:   "CDK deploys by assuming its bootstrap roles (cdk-hnb659fds-<kind>-<account>-<region>); only this role may",
		DutyRelease: "releases write arbitrary version keys in the releases bucket only; command results are read by command id, which has no ARN; DescribeInstances has no resource type (region condition)",
		DutySite:    "site sync writes arbitrary object keys in the static bucket only",
		DutyDiff:    "infra:diff assumes the read-only CDK lookup role of this account in any bootstrapped region (cdk-hnb659fds-lookup-role-<account>-<region>)",
		DutyAmi:     "image builds launch from any Amazon Linux image into the account's subnet; stop/terminate/image/deregister/delete and Run Command are limited to resources tagged " + AmiBuildTag + "=<env> (tag conditions); Describe* have no resource type (region condition); staged files live under " + AmiStagingPrefix + "; the rollout refreshes only the box's Auto Scaling group (any group id, fixed name) and commands only instances carrying that group's tag",
	}
	for _, d := range Duties {
		cdknag.NagSuppressions_AddResourceSuppressions(s.GithubOidc.Roles[d.Name], toNag([]suppression{{id: "AwsSolutions-IAM5", reason: oidc[d.Name]}}), jsii.Bool(true))
	}
	cdknag.NagSuppressions_AddResourceSuppressions(s.GithubOidc.AmiBuilder, toNag([]suppression{
		{id: "AwsSolutions-IAM4", reason: "AmazonSSMManagedInstanceCore is the documented minimum for the SSM agent the AMI pipeline provisions through (no SSH)",
			appliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"}},
		{id: "AwsSolutions-IAM5", reason: "the build instance reads and writes staged files under " + AmiStagingPrefix + " in the releases bucket only",
			appliesTo: res("arn:aws:s3:::" + s.buckets.Releases + "/" + AmiStagingPrefix + "*")},
	}), jsii.Bool(true))
}

// NagFinding is one line of a cdk-nag report that is not compliant.
type NagFinding struct {
	Stack, Rule, Resource, Level, Compliance, Reason, Info string
}

func (f NagFinding) String() string {
	return fmt.Sprintf("%s %s %s (%s): %s", f.Stack, f.Rule, f.Resource, f.Level, f.Info)
}

// NagSummary counts the findings of all reports in an assembly directory.
type NagSummary struct {
	Errors, Warnings, Suppressed []NagFinding
}

// NagFindings reads the AwsSolutions reports cdk-nag wrote into dir.
func NagFindings(dir string) (*NagSummary, error) {
	files, err := filepath.Glob(filepath.Join(dir, "AwsSolutions-*-NagReport.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("nag: no AwsSolutions reports in %s; was the app synthesized with -nag?", dir)
	}
	sort.Strings(files)
	sum := &NagSummary{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("nag: %w", err)
		}
		var rep struct {
			Lines []struct {
				RuleID          string `json:"ruleId"`
				ResourceID      string `json:"resourceId"`
				Compliance      string `json:"compliance"`
				ExceptionReason string `json:"exceptionReason"`
				RuleLevel       string `json:"ruleLevel"`
				RuleInfo        string `json:"ruleInfo"`
			} `json:"lines"`
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			return nil, fmt.Errorf("nag: parse %s: %w", f, err)
		}
		stack := strings.TrimPrefix(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "AwsSolutions-"), "-NagReport.json"), "-")
		for _, l := range rep.Lines {
			fd := NagFinding{Stack: stack, Rule: l.RuleID, Resource: l.ResourceID, Level: l.RuleLevel, Compliance: l.Compliance, Reason: l.ExceptionReason, Info: l.RuleInfo}
			switch {
			case l.Compliance == "Suppressed":
				sum.Suppressed = append(sum.Suppressed, fd)
			case l.Compliance == "Non-Compliant" && l.RuleLevel == "Error":
				sum.Errors = append(sum.Errors, fd)
			case l.Compliance == "Non-Compliant":
				sum.Warnings = append(sum.Warnings, fd)
			}
		}
	}
	return sum, nil
}
