// Package twinstate is the on-disk layout of the local twin: where each component keeps its data,
// logs and pid, and the secrets generated for it on first start. It has no dependencies on the
// rest of the twin so that the AWS layer and tests can read it.
package twinstate

import (
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
	S3AccessKey    string `json:"s3_access_key"`
	S3SecretKey    string `json:"s3_secret_key"`
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
	if s, err := d.ReadSecrets(); err == nil {
		return s, nil
	} else if !errors.Is(err, ErrNoSecrets) {
		return s, err
	}
	s := Secrets{
		S3AccessKey:    "ZOPS" + random(8),
		S3SecretKey:    random(20),
		PGPassword:     random(16),
		ResticPassword: random(24),
		OriginVerify:   random(24),
		ClerkSecret:    "sk_test_" + random(16),
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
