package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/boxbuild"
)

// Box rebuilds the box root (warm: cached base) and boots it to a healthy API; last line `box: build_s=A boot_to_healthy_s=B first_boot_s=C ...` (goals: A <= 180, B <= 5).
//
// boot_to_healthy_s is a boot on an existing data volume (a reboot, an ami rollout);
// first_boot_s is the very first boot on a blank volume (format, initdb).
//
// Options: as for ami:local (go tool mage -h ami:local). Needs root and the twin.
func (Bench) Box(ctx context.Context) error { return boxbuild.BenchTarget(ctx, os.Stdout) }
