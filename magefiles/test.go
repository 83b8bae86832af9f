package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/testrun"
)

// Test runs every test (unit and integration) against the real components of the local twin,
// which it brings up first; a missing component fails the run.
//
// Options: ZOPS_TEST_PKGS (space-separated packages, default ./... plus the infra module),
// ZOPS_TEST_RUN (-run pattern), ZOPS_TEST_SHORT=1 (-short), ZOPS_TEST_VERBOSE=1 (-v),
// ZOPS_TEST_TIMEOUT (default 40m).
func Test(ctx context.Context) error {
	return testrun.TestTarget(ctx, os.Stdout)
}
