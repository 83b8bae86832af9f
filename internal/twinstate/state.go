// Package twinstate is the on-disk layout of the local twin: where each component keeps its data,
// logs and pid, and the secrets generated for it on first start. It has no dependencies on the
// rest of the twin so that the AWS layer and tests can read it.
package twinstate

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Dir is the twin's state directory.
type Dir string

// Path joins elements under the state directory.
func (d Dir) Path(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}

// Log is the log file of a component.
func (d Dir) Log(component string) string { return d.Path("logs", component+".log") }

// PID is the pid file of a component.
func (d Dir) PID(component string) string { return d.Path("run", component+".pid") }

// Secrets are generated once per twin and never printed. They stand in for the SSM
// SecureString parameters of production (and are also stored in the twin's SSM).
type Secrets struct {
	S3AccessKey string `json:"s3_access_key"`
	S3SecretKey string `json:"s3_secret_key"`
	// BoxS3AccessKey and BoxS3SecretKey are the box's own S3 user: the backup jobs use it, and
	// the backups bucket's policy denies it deleting versions (production's box role).
	BoxS3AccessKey string `json:"box_s3_access_key"`
	BoxS3SecretKey string `json:"box_s3_secret_key"`
	PGPassword     string `json:"postgres_password"` // password of the zmanim application role
	ResticPassword string `json:"restic_password"`   // restic repository password
	OriginVerify   string `json:"origin_verify"`     // the gateway's origin-verify header value
	ClerkSecret    string `json:"clerk_secret_key"`  // placeholder for the Clerk secret key
}

// ErrNoSecrets means the twin has never been started in this state directory.
var ErrNoSecrets = errors.New("the local twin has no secrets yet")

// ReadSecrets loads the twin's secrets.
func (d Dir) ReadSecrets() (Secrets, error) {
	var s Secrets
	b, err := os.ReadFile(d.Path("secrets.json"))
	if errors.Is(err, os.ErrNotExist) {
		return s, fmt.Errorf("%w in %s: run `go tool mage twin:up`", ErrNoSecrets, string(d))
	}
	if err != nil {
		return s, fmt.Errorf("read twin secrets: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("read twin secrets %s: %w", d.Path("secrets.json"), err)
	}
	return s, nil
}

// EnsureSecrets returns the twin's secrets, generating and storing them (mode 0600) on first use.
func (d Dir) EnsureSecrets() (Secrets, error) {
	s, err := d.ReadSecrets()
	switch {
	case err == nil && s.BoxS3AccessKey != "":
		return s, nil
	case err == nil:
		// A state directory from before the box had its own S3 user: add it, keep the rest.
		s.BoxS3AccessKey, s.BoxS3SecretKey = "ZBOX"+random(8), random(20)
	case errors.Is(err, ErrNoSecrets):
		s = Secrets{
			S3AccessKey:    "ZOPS" + random(8),
			S3SecretKey:    random(20),
			BoxS3AccessKey: "ZBOX" + random(8),
			BoxS3SecretKey: random(20),
			PGPassword:     random(16),
			ResticPassword: random(24),
			OriginVerify:   random(24),
			ClerkSecret:    "sk_test_" + random(16),
		}
	default:
		return s, err
	}
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return s, fmt.Errorf("create twin state %s: %w", string(d), err)
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(d.Path("secrets.json"), b, 0o600); err != nil {
		return s, fmt.Errorf("write twin secrets: %w", err)
	}
	return s, nil
}

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// S3IAMDir is where the twin's S3 server keeps its users (versitygw --iam-dir).
func (d Dir) S3IAMDir() string { return d.Path("s3-iam") }

// BoxS3Ready reports whether the twin's S3 server was started with the box's own user, so the
// box's credentials work. A server started by an older twin:up knows only the root user until
// the next twin:down/twin:up; callers then fall back to the root credentials.
func (d Dir) BoxS3Ready(s Secrets) bool {
	if s.BoxS3AccessKey == "" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(d.S3IAMDir(), "users.json"))
	return err == nil && bytes.Contains(b, []byte(`"`+s.BoxS3AccessKey+`"`))
}
