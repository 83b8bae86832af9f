package rollout

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestRolloutAcceptance rolls the real production box: only with ZOPS_AWS_ACCEPTANCE=1, AWS
// credentials, ZOPS_ENV=prod and ZOPS_ROLLOUT_IMAGE (an arm64 image of the family; the box
// is replaced, so run it against a staging account). It proves what the fakes cannot: the
// instance refresh terminates before it launches, first boot claims the volume, the Elastic
// IP and Cloud Map, and /health answers through the edge.
func TestRolloutAcceptance(t *testing.T) {
	if os.Getenv("ZOPS_AWS_ACCEPTANCE") != "1" {
		t.Skip("set ZOPS_AWS_ACCEPTANCE=1 (with AWS credentials, ZOPS_ENV=prod, ZOPS_ROLLOUT_IMAGE) to roll a real box")
	}
	image := os.Getenv("ZOPS_ROLLOUT_IMAGE")
	if image == "" {
		t.Fatal("ZOPS_ROLLOUT_IMAGE is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	if err := Target(ctx, os.Stdout, image); err != nil {
		t.Fatal(err)
	}
}
