package main

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/testrun"
)

// Test runs every test (unit and integration) against the real components of the local twin,
// which it brings up first; a missing component fails the run.
//
// Options: ZOPS_TEST_PKGS (space-separated packages, default ./... plus the infra module),
// ZOPS_TEST_RUN (-run pattern), ZOPS_TEST_SHORT=1 (-short), ZOPS_TEST_VERBOSE=1 (-v),
// ZOPS_TEST_TIMEOUT (default 40m).
func Test(ctx context.Context) error {
	timeout, _ := time.ParseDuration(os.Getenv("ZOPS_TEST_TIMEOUT"))
	return testrun.Run(ctx, testrun.Options{
		Packages: strings.Fields(os.Getenv("ZOPS_TEST_PKGS")),
		Run:      os.Getenv("ZOPS_TEST_RUN"),
		Short:    os.Getenv("ZOPS_TEST_SHORT") == "1",
		Verbose:  os.Getenv("ZOPS_TEST_VERBOSE") == "1",
		Timeout:  timeout,
		Out:      os.Stdout,
	})
}
