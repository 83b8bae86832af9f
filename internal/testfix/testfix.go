// Package testfix holds the integration-test fixtures shared by every package: a scratch
// PostgreSQL database, a scratch S3 bucket and bearer tokens, all on the local twin's real
// components (PostgreSQL+PostGIS, versitygw, the Clerk stand-in of internal/jwtissuer).
//
// Each fixture finds its component through internal/testenv, so it is skipped on a developer's
// machine without the twin and fails when ZOPS_REQUIRE_INTEGRATION=1 (CI, `mage test`). What a
// fixture creates is uniquely named and removed when the test ends, so tests run in parallel
// with each other and with other people's work on the same twin.
package testfix

import (
	"crypto/rand"
	"encoding/hex"
)

// RandHex returns 2n random hex digits, for unique names.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
