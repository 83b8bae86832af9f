package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDoesNotLinkEC2 keeps the EC2 SDK (minutes to compile on a fresh machine) out of the
// backup program the box runs: EC2 calls live in internal/awsx/ec2x, which it never needs.
func TestDoesNotLinkEC2(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, d := range strings.Fields(string(out)) {
		if strings.HasPrefix(d, "github.com/aws/aws-sdk-go-v2/service/ec2") || strings.HasPrefix(d, "github.com/shtetl/zmanim-ops/internal/awsx/ec2x") {
			t.Errorf("cmd/zops-backup links %s", d)
		}
	}
}
