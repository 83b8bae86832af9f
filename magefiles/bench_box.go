package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/boxbuild"
)

// Box rebuilds the box root (warm: cached base and packages) and boots it to a healthy API; last line `box: build_s=A boot_to_healthy_s=B` (goals: 180 and 5).
//
// Options: as for ami:local (go tool mage -h ami:local). Needs root and the twin.
func (Bench) Box(ctx context.Context) error { return boxbuild.BenchTarget(ctx, os.Stdout) }
