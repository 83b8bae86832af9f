package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// dutyRoles returns the logical id of each duty's role in the github-oidc stack.
func dutyRoles(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for id, r := range res(PartGitHubOIDC, "AWS::IAM::Role") {
		for _, d := range Duties {
			if props(r)["RoleName"] == DutyRoleName(cfg.Name, d.Name) {
				out[d.Name] = id
			}
		}
	}
	if len(out) != len(Duties) {
		t.Fatalf("duty roles %v, want one per duty %v", out, Duties)
	}
	return out
}

// statements returns every permission statement attached to the role with logical id role.
func statements(role string) []map[string]any {
	var out []map[string]any
	for _, p := range res(PartGitHubOIDC, "AWS::IAM::Policy") {
		if !strings.Contains(js(props(p)["Roles"]), `"`+role+`"`) {
			continue
		}
		for _, s := range asList(props(p)["PolicyDocument"].(map[string]any)["Statement"]) {
			out = append(out, s.(map[string]any))
		}
	}
	return out
}

// Finding 1 (issue 14): the old single deploy role trusted repo:R:ref:refs/tags/*, so any
// tag-triggered workflow a collaborator added could assume it. Each duty now has its own role
// whose trust requires the GitHub environment (sub = repo:R:environment:prod, protected by
// required reviewers) and that duty's workflow file (job_workflow_ref).
func TestGithubOidcOneRolePerDutyTrustsOnlyProdEnvironmentAndItsWorkflow(t *testing.T) {
	has(t, PartGitHubOIDC, "AWS::IAM::OIDCProvider", map[string]any{"Url": "https://" + GitHubIssuerHost, "ClientIdList": []any{GitHubAudience}})
	roles := dutyRoles(t)
	all := res(PartGitHubOIDC, "AWS::IAM::Role")
	for _, d := range Duties {
		role := all[roles[d.Name]]
		trust := asList(props(role)["AssumeRolePolicyDocument"].(map[string]any)["Statement"])
		if len(trust) != 1 {
			t.Fatalf("%s: trust %s", d.Name, js(trust))
		}
		s := trust[0].(map[string]any)
		var refs []string
		for _, r := range d.Refs {
			refs = append(refs, `"shtetl/zmanim-ops/.github/workflows/`+d.Workflow+`@`+r+`"`)
		}
		ref := strings.Join(refs, ",")
		if len(refs) > 1 {
			ref = "[" + ref + "]"
		}
		want := `{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com","token.actions.githubusercontent.com:sub":"repo:shtetl/zmanim-ops:environment:` + d.GitHubEnvironment("prod") + `"},` +
			`"StringLike":{"token.actions.githubusercontent.com:job_workflow_ref":` + ref + `}}`
		if s["Action"] != "sts:AssumeRoleWithWebIdentity" || s["Effect"] != "Allow" || js(s["Condition"]) != want {
			t.Errorf("%s: trust statement %s\nwant condition %s", d.Name, js(s), want)
		}
		if strings.Contains(js(s), "ref:refs/tags") {
			t.Errorf("%s: trust still accepts any tag ref: %s", d.Name, js(s))
		}
	}
	// No other role in the stack trusts GitHub (the AMI builder role is for EC2).
	for id, r := range all {
		if strings.Contains(js(props(r)["AssumeRolePolicyDocument"]), GitHubIssuerHost) && !strings.Contains(js(roles), id) {
			t.Errorf("role %s trusts GitHub but is no duty role", id)
		}
	}
}

// Only the infra role may assume the CDK bootstrap roles (account admin in effect), and it can
// do nothing else; the diff role may assume only the read-only lookup role; no other role
// reaches IAM or STS beyond passing the AMI builder role.
func TestGithubOidcOnlyInfraRoleAssumesCdkBootstrapRoles(t *testing.T) {
	for duty, id := range dutyRoles(t) {
		for _, s := range statements(id) {
			a := js(s["Action"])
			assumes := strings.Contains(a, "sts:AssumeRole")
			if duty == DutyInfra {
				if !assumes || !strings.Contains(js(s["Resource"]), "cdk-hnb659fds-") {
					t.Errorf("infra role may only assume the CDK roles: %s", js(s))
				}
				continue
			}
			if duty == DutyDiff {
				if !assumes || !strings.Contains(js(s["Resource"]), "cdk-hnb659fds-lookup-role-") || strings.Contains(js(s["Resource"]), "deploy") {
					t.Errorf("diff role may only assume the CDK lookup role: %s", js(s))
				}
				continue
			}
			if assumes || strings.Contains(js(s["Resource"]), "cdk-hnb659fds") {
				t.Errorf("%s role reaches the CDK bootstrap roles: %s", duty, js(s))
			}
			if strings.Contains(a, "iam:") && (a != `"iam:PassRole"` || duty != DutyAmi || !strings.Contains(js(s["Resource"]), "AmiBuilderRole")) {
				t.Errorf("%s role has IAM rights: %s", duty, js(s))
			}
		}
	}
}

// Least privilege per duty: release writes only the releases bucket and commands only the box;
// site writes only the static bucket; ami stops, terminates, images and deletes only what it
// tagged; none touches the backups bucket or uses a wildcard action.
func TestGithubOidcDutyPermissionsAreLeast(t *testing.T) {
	roles := dutyRoles(t)
	for duty, id := range roles {
		for _, s := range statements(id) {
			a, r := js(s["Action"]), js(s["Resource"])
			if strings.Contains(a, `*"`) || s["Effect"] != "Allow" {
				t.Errorf("%s: %s", duty, js(s))
			}
			if strings.Contains(r, cfg.Buckets.Backups) {
				t.Errorf("%s role reaches the backups bucket: %s", duty, js(s))
			}
			if strings.Contains(a, "s3:") {
				want := map[string]string{DutyRelease: cfg.Buckets.Releases, DutySite: cfg.Buckets.Static, DutyAmi: cfg.Buckets.Releases + "/" + AmiStagingPrefix}[duty]
				for _, res := range asList(s["Resource"]) {
					if want == "" || !strings.Contains(js(res), want) {
						t.Errorf("%s role: s3 on %s", duty, js(res))
					}
				}
			}
			if strings.Contains(a, "cloudfront:") && duty != DutySite {
				t.Errorf("%s role invalidates CloudFront", duty)
			}
			// The box is the Auto Scaling group's instance: instances only with the group's tag.
			if strings.Contains(a, "ssm:SendCommand") && duty == DutyRelease && !strings.Contains(r, "AWS-RunShellScript") &&
				(!strings.Contains(r, "instance/*") || !strings.Contains(js(s["Condition"]), "ssm:resourceTag/aws:autoscaling:groupName")) {
				t.Errorf("release role commands more than the box: %s", r)
			}
			destructive := strings.Contains(a, "ec2:TerminateInstances") || strings.Contains(a, "ec2:StopInstances") || strings.Contains(a, "ec2:DeregisterImage") || strings.Contains(a, "ec2:DeleteSnapshot")
			if destructive && (duty != DutyAmi || !strings.Contains(js(s["Condition"]), "/"+AmiBuildTag)) {
				t.Errorf("%s: destructive EC2 without the %s tag condition: %s", duty, AmiBuildTag, js(s))
			}
			// The ami role provisions its own tagged builders and, for the rollout, stops the
			// box's services: instances with the build tag or the box group's tag only.
			if strings.Contains(a, "ssm:SendCommand") && duty == DutyAmi && strings.Contains(r, "instance/") &&
				!strings.Contains(js(s["Condition"]), "ssm:resourceTag/"+AmiBuildTag) && !strings.Contains(js(s["Condition"]), "ssm:resourceTag/aws:autoscaling:groupName") {
				t.Errorf("ami role commands untagged instances: %s", js(s))
			}
			if strings.Contains(a, "autoscaling:StartInstanceRefresh") && (duty != DutyAmi || !strings.Contains(r, "autoScalingGroupName/"+GroupName(cfg.Name)+`"`)) {
				t.Errorf("%s: instance refresh beyond the box's group: %s", duty, js(s))
			}
		}
	}
}

// Each duty workflow runs in the environment and assumes its own role; no long-lived key.
func TestGithubOidcWorkflowsUseTheirDutyRoleInProdEnvironment(t *testing.T) {
	for _, d := range Duties {
		b, err := os.ReadFile(filepath.Join("..", ".github", "workflows", d.Workflow))
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		wf := string(b)
		for _, want := range []string{"environment: " + d.GitHubEnvironment(cfg.Name), "id-token: write", "role-to-assume: ${{ vars.ZOPS_" + strings.ToUpper(d.Name) + "_ROLE_ARN }}"} {
			if !strings.Contains(wf, want) {
				t.Errorf("%s lacks %q", d.Workflow, want)
			}
		}
		if strings.Contains(wf, "ZOPS_DEPLOY_ROLE_ARN") || strings.Contains(strings.ToLower(wf), "aws-secret-access-key") || strings.Contains(wf, "AWS_SECRET_ACCESS_KEY") {
			t.Errorf("%s uses the old shared role or a long-lived key", d.Workflow)
		}
	}
	// Deploys run from main behind the prod environment's reviewers (issue 17: a deploy on
	// every release tag overlapped the release); internal/workflows checks the rest.
	b, _ := os.ReadFile("../.github/workflows/infra.yml")
	if !strings.Contains(string(b), "go tool mage infra:check infra:deploy") || strings.Contains(string(b), "tags:") {
		t.Errorf("infra.yml no longer checks and deploys from main, or deploys on tags")
	}
}

// The workflows pass actionlint (pinned as a tool in infra/go.mod; it also runs shellcheck on
// run: blocks when shellcheck is installed).
func TestWorkflowActionlint(t *testing.T) {
	files, _ := filepath.Glob("../.github/workflows/*.yml")
	out, err := exec.Command("go", append([]string{"tool", "actionlint", "-color=false"}, files...)...).CombinedOutput()
	if err != nil {
		t.Errorf("actionlint: %v\n%s", err, out)
	}
}

// The ami workflow runs `mage ami` then `mage ami:rollout` with the ami role: every call the
// rollout makes (internal/rollout) is allowed, scoped to the box's group, its Cloud Map
// service and its parameters.
func TestGithubOidcAmiRoleCanRollOutTheBox(t *testing.T) {
	roles := dutyRoles(t)
	var all []map[string]any
	for _, s := range statements(roles[DutyAmi]) {
		all = append(all, s)
	}
	allowed := func(action, resourcePart, condPart string) bool {
		for _, s := range all {
			if strings.Contains(js(s["Action"]), `"`+action+`"`) && strings.Contains(js(s["Resource"]), resourcePart) && strings.Contains(js(s["Condition"]), condPart) {
				return true
			}
		}
		return false
	}
	for _, c := range []struct{ action, resource, cond string }{
		{"ec2:DescribeImages", "*", ""},
		{"ec2:DescribeVolumes", "*", ""},
		{"ec2:DescribeInstanceStatus", "*", ""},
		{"autoscaling:DescribeAutoScalingGroups", "*", cfg.Region},
		{"autoscaling:DescribeInstanceRefreshes", "*", cfg.Region},
		{"autoscaling:StartInstanceRefresh", "autoScalingGroupName/" + GroupName(cfg.Name), ""},
		{"ssm:PutParameter", cfg.Instance.AMIParameter, ""},
		{"ssm:GetParameter", cfg.SSMPrefix + "/" + ParamBox, ""},
		{"ssm:SendCommand", "instance/*", "aws:autoscaling:groupName"},
		{"servicediscovery:DeregisterInstance", "BoxService", ""},
	} {
		if !allowed(c.action, c.resource, c.cond) {
			t.Errorf("the ami role cannot %s on %s (condition %q): ami:rollout would fail in the workflow", c.action, c.resource, c.cond)
		}
	}
}
