package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// 7.1.4 + 7.1.5: GitHub Actions deploy on tags through OIDC; only this repository's tag
// workflows may assume the role, and no key is stored anywhere.
func TestStory7_1_4_and_7_1_5_GithubOidcRole(t *testing.T) {
	has(t, PartGitHubOIDC, "AWS::IAM::OIDCProvider", map[string]any{"Url": "https://" + GitHubIssuerHost, "ClientIdList": []any{GitHubAudience}})
	_, role := one(t, PartGitHubOIDC, "AWS::IAM::Role")
	trust := asList(props(role)["AssumeRolePolicyDocument"].(map[string]any)["Statement"])
	if len(trust) != 1 {
		t.Fatalf("trust %v", trust)
	}
	s := trust[0].(map[string]any)
	want := `{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"},"StringLike":{"token.actions.githubusercontent.com:sub":"repo:shtetl/zmanim-ops:ref:refs/tags/*"}}`
	if s["Action"] != "sts:AssumeRoleWithWebIdentity" || js(s["Condition"]) != want {
		t.Errorf("trust statement %s", js(s))
	}
	b, err := os.ReadFile("../.github/workflows/infra.yml")
	if err != nil {
		t.Fatalf("workflow: %v", err)
	}
	wf := string(b)
	for _, want := range []string{"tags:", "id-token: write", "role-to-assume:", "go tool mage infra:check infra:deploy"} {
		if !strings.Contains(wf, want) {
			t.Errorf("infra.yml lacks %q", want)
		}
	}
	if strings.Contains(wf, "aws-secret-access-key") || strings.Contains(wf, "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("infra.yml uses a long-lived key")
	}
}

// The workflow passes actionlint (pinned as a tool in infra/go.mod; it also runs shellcheck on
// run: blocks when shellcheck is installed).
func TestWorkflowActionlint(t *testing.T) {
	out, err := exec.Command("go", "tool", "actionlint", "-color=false", "../.github/workflows/infra.yml").CombinedOutput()
	if err != nil {
		t.Errorf("actionlint: %v\n%s", err, out)
	}
}
