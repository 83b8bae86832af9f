// Package testenv hands integration tests the addresses of the real components they need.
//
// `go tool mage test` brings the local twin up and exports one variable per component
// (ZOPS_TEST_PG_URL, ZOPS_TEST_REDIS_ADDR, ZOPS_TEST_S3_ENDPOINT, ...). A test asks for a
// component with Require; when the variable is missing the test is skipped on a developer's
// machine, and fails when ZOPS_REQUIRE_INTEGRATION=1 (set by CI and by `mage test`), so a
// missing component can never pass silently.
package testenv

import (
	"os"
	"strings"
	"testing"
)

// Component names, each an environment variable exported by `mage test`.
const (
	PostgresURL    = "ZOPS_TEST_PG_URL"      // superuser URL of the twin's PostgreSQL (postgres database)
	RedisAddr      = "ZOPS_TEST_REDIS_ADDR"  // host:port of the twin's Redis
	S3Endpoint     = "ZOPS_TEST_S3_ENDPOINT" // http URL of the twin's S3 server (path-style)
	S3AccessKey    = "ZOPS_TEST_S3_ACCESS_KEY"
	S3SecretKey    = "ZOPS_TEST_S3_SECRET_KEY"
	S3Region       = "ZOPS_TEST_S3_REGION"      // the region the S3 server checks signatures for
	PGWALArchive   = "ZOPS_TEST_PG_WAL_ARCHIVE" // directory the twin's PostgreSQL archives WAL into
	AWSEndpoint    = "ZOPS_TEST_AWS_ENDPOINT"   // kumo: SSM, SES v2, ...
	EdgeURL        = "ZOPS_TEST_EDGE_URL"       // the twin's CloudFront edge
	APIURL         = "ZOPS_TEST_API_URL"        // the box's own port (needs the origin-verify header)
	JWTIssuerURL   = "ZOPS_TEST_JWT_URL"        // the local Clerk stand-in (JWKS, minting)
	ResticBin      = "ZOPS_TEST_RESTIC"         // path of the pinned restic binary
	TwinConfigFile = "ZOPS_TEST_CONFIG"         // path of the zmanim-ops config file in use
)

// Required reports whether missing components must fail tests instead of skipping them.
func Required() bool {
	v := strings.ToLower(os.Getenv("ZOPS_REQUIRE_INTEGRATION"))
	return v == "1" || v == "true" || v == "yes"
}

// Require returns the value of the named component variable. When it is unset the test is
// skipped, or fails if integration components are required (CI).
func Require(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if Required() {
		t.Fatalf("integration component missing: %s is not set; run the tests with `go tool mage test`, which starts the local twin and exports it", name)
	}
	t.Skipf("%s not set: integration test needs the local twin (run `go tool mage test`)", name)
	return ""
}
