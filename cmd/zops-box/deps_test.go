package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksOnlyTheAgent keeps the box binary small and its blast radius narrow: zops-box
// runs on the production box, so it links the on-box agent (internal/onbox) and the
// supervisor, never the release pipeline or the load generator (nor, through them, the
// EC2 SDK).
func TestLinksOnlyTheAgent(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/shtetl/zmanim-ops/internal/release",
		"github.com/shtetl/zmanim-ops/internal/loadtest",
		"github.com/aws/aws-sdk-go-v2/service/ec2",
	}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("cmd/zops-box links %s; move what it needs into internal/onbox", d)
			}
		}
	}
	var agent bool
	for _, d := range deps {
		agent = agent || d == "github.com/shtetl/zmanim-ops/internal/onbox"
	}
	if !agent {
		t.Error("cmd/zops-box does not link internal/onbox: the deploy subcommand lost its agent")
	}
}
