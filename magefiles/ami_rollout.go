package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/rollout"
)

// Rollout moves the production box to IMAGE ("" = the image in the SSM image parameter) by an instance refresh, rolling back on failure.
//
// Checks the image (exists, available, arm64) and the data volume (in the group's zone, held by
// no instance outside the box's Auto Scaling group) before anything changes; then publishes the
// image in the parameter the launch template resolves at launch, takes the box out of Cloud Map
// and stops its services cleanly, starts an instance refresh with min healthy 0 / max healthy
// 100 (the old box is terminated before the new one starts: the volume attaches to one instance
// at a time), waits for the new instance's status checks and image and for /health through the
// edge, and checks the volume moved. A failure after the parameter changed puts the previous
// image back and refreshes again on the same data volume. First boot never formats a volume
// that holds data. Each step prints its time. Production only (ZOPS_ENV=prod); on the twin,
// bench:recovery replaces the local box the same way. Mage arguments are positional:
// `go tool mage ami:rollout ami-0123...` or `go tool mage ami:rollout ""`.
//
// Options (environment):
//
//	ZOPS_ENV=prod                 the environment (the twin is refused)
//	ZOPS_FORCE=1                  replace the box even when it already runs IMAGE
//	ZOPS_ROLLOUT_HEALTH_WAIT      how long the new box has to pass status checks and /health (default 10m)
func (Ami) Rollout(ctx context.Context, image string) error {
	return rollout.Target(ctx, os.Stdout, image)
}
