package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/shtetl/zmanim-ops/internal/twin"
)

// Twin manages the local twin of production on loopback (S3, SSM/SES, PostgreSQL + PostGIS,
// Redis, the box running the API, the API Gateway and CloudFront emulation).
type Twin mg.Namespace

// Up brings the local twin up (idempotent; a no-op in seconds when it already runs).
//
// The first run installs missing Debian packages (as root on Debian), builds the pinned
// versitygw and kumo once into the cache, fetches the GeoNames cities and seeds ~171k of them.
// Options: ZOPS_ENV (default local), ZOPS_CONFIG (config file), ZOPS_STATE_DIR,
// ZOPS_CACHE_DIR (tool build cache), ZOPS_TWIN_API_ENV (extra KEY=VALUE,... for the API's
// environment file, e.g. test hooks), ZOPS_TWIN_BACKUPS=0 (do not run the box's backup timers;
// by default the twin runs backup:run, verify, base and WAL shipping on the production schedule).
func (Twin) Up(ctx context.Context) error {
	return twin.UpTarget(ctx, os.Stdout)
}

// Status reports every component's URL, port, version and health; exits non-zero if one is down.
//
// Options: ZOPS_JSON=1 prints JSON.
func (Twin) Status(ctx context.Context) error {
	return twin.StatusTarget(ctx, os.Stdout)
}

// Down stops every component of the twin; its data stays in the state directory.
func (Twin) Down(ctx context.Context) error {
	return twin.DownTarget(ctx, os.Stdout)
}

// Reset stops the twin and deletes its state directory: databases, buckets, secrets, logs.
func (Twin) Reset(ctx context.Context) error {
	return twin.ResetTarget(ctx, os.Stdout)
}

// Token mints a test JWT from the twin's Clerk stand-in: kind is user, admin or expired.
//
// Options: ZOPS_TOKEN_SUB sets the subject (default user_<kind>).
func (Twin) Token(ctx context.Context, kind string) error {
	return twin.TokenTarget(ctx, os.Stdout, kind)
}
