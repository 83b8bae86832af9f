package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/shtetl/zmanim-ops/internal/release"
)

// Release ships the API to the box: build, verify, upload, zero-downtime switch, health gate, rollback.
//
// On the local twin (the default) it brings the twin up first if it is not running. Steps: cross-compile (linux/arm64 for the box, plus the host arch for the twin, and zops-box), smoke-test the
// arm64 binary under qemu, package (sha256, manifest), take the deploy lock, upload to the
// releases bucket under an immutable key, switch the box (download, verify, install side by
// side, atomic symlink swap, socket handover), health gate with automatic rollback, record
// the history, prune old releases. Prints a summary with version, sha256 and time per step.
//
// Options (environment):
//
//	ZOPS_ENV            local (the twin, default) or prod (SSM Run Command to the instance)
//	ZOPS_VERSION        version to release (default: git describe --tags --always)
//	ZOPS_DRY_RUN=1      print the plan, change nothing
//	ZOPS_ALLOW_DIRTY=1  release uncommitted changes (refused otherwise)
//	ZOPS_LOCK_WAIT      queue behind a running release for this long, e.g. 10m (default: fail at once)
//	ZOPS_MESSAGE        note recorded with the lock and in the history
//	ZOPS_SMOKE=0        skip the qemu smoke test
//	ZOPS_API_SOURCE     build the API from another repository: a checkout directory or a git
//	                    URL (fetched into the tool cache); default: this repository's
//	                    examples/zmanim-api. zops-box is always built from this repository.
//	ZOPS_API_REF        branch, tag or commit of a git ZOPS_API_SOURCE (default HEAD)
//	ZOPS_API_PACKAGE    the API's Go package in its source, e.g. ./cmd/api (default: config
//	                    release.package). The binary must answer --version and serve /health
//	                    with its version on the socket systemd passes (see release.APISource).
//
// Related: release:rollback [VERSION], release:history (aliases of releases:rollback and
// releases:history; Go cannot name a namespace type and this function both Release).
func Release(ctx context.Context) error {
	return release.ReleaseTarget(ctx, os.Stdout, startTwin)
}

// Releases holds the release history and rollback; `release:rollback` and `release:history`
// are aliases of its targets.
type Releases mg.Namespace

// Rollback switches the box back to VERSION, or to the previous good release when VERSION is "".
//
// `go tool mage release:rollback ""` returns to the last successful release before the one
// serving (from the history); it takes the lock, runs the health gate and records the result
// like a release. Options: ZOPS_ENV, ZOPS_DRY_RUN, ZOPS_LOCK_WAIT, ZOPS_MESSAGE.
func (Releases) Rollback(ctx context.Context, version string) error {
	return release.RollbackTarget(ctx, os.Stdout, startTwin, version)
}

// History prints the release history (who, when, version, result) and what a rollback
// would return to. Options: ZOPS_ENV.
func (Releases) History(ctx context.Context) error {
	return release.HistoryTarget(ctx, os.Stdout)
}

// Aliases: `release:rollback` and `release:history` next to the top-level `release`.
var Aliases = map[string]interface{}{
	"release:rollback": Releases.Rollback,
	"release:history":  Releases.History,
	"ami":              Ami.Ec2, // `mage ami` is the EC2 image build (magefiles/ami_ec2.go)
}

// startTwin is twin:up as a once-only dependency, for the targets that need the twin running.
func startTwin(ctx context.Context) error {
	mg.CtxDeps(ctx, Twin.Up)
	return nil
}
