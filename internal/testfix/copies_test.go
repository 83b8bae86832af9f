package testfix

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ownServers are tests that talk to a server of their own rather than the twin's, so the
// fixtures do not apply: the issuer's own handler, a versitygw with IAM users started by the
// backup-protection test, the fake SSM Run Command (no emulator implements SendCommand), and
// the site's direct PUT (a fake S3 that throttles, endpoint resolution with no server, and
// real S3 behind ZOPS_AWS_ACCEPTANCE; its versitygw tests use the fixtures).
var ownServers = map[string]bool{
	"internal/jwtissuer/issuer_test.go": true,
	"internal/backup/undelete_test.go":  true,
	"internal/awsx/runcommand_test.go":  true,
	"internal/site/s3put_test.go":       true,
}

// TestNoCopiesOfTheFixtures keeps this package the one home of the scratch bucket, the scratch
// database and token minting: a test building its own would drift from the others again
// (another region default, no cleanup, guessed response formats).
func TestNoCopiesOfTheFixtures(t *testing.T) {
	t.Parallel()
	copies := regexp.MustCompile(`CreateBucket\(|s3\.New\(|s3\.NewFromConfig\(|/mint\?|"CREATE DATABASE `)
	root := filepath.Join("..", "..")
	for _, dir := range []string{"internal", "cmd", "examples"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, "_test.go") {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			rel = filepath.ToSlash(rel)
			if strings.HasPrefix(rel, "internal/testfix/") || ownServers[rel] {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if m := copies.Find(b); m != nil {
				t.Errorf("%s has its own fixture (%s): use testfix.RequireS3/NewBucket, RequirePG/NewDB or Token", rel, m)
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
}
