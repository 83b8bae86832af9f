package onbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ManifestKey is the key of a version's manifest.
func ManifestKey(version string) string { return "releases/" + version + "/manifest.json" }

// ArtifactKey is the key of one binary.
func ArtifactKey(version, name, arch string) string {
	return "releases/" + version + "/linux-" + arch + "/" + name
}

// Manifest describes one release. The box verifies every download against it.
type Manifest struct {
	Version    string     `json:"version"`
	Commit     string     `json:"commit"`
	CommitTime time.Time  `json:"commit_time"` // also the binaries' build date
	GoVersion  string     `json:"go_version"`
	BuiltAt    time.Time  `json:"built_at"`
	BuiltBy    string     `json:"built_by"`
	Dirty      bool       `json:"dirty,omitempty"`
	Artifacts  []Artifact `json:"artifacts"`
}

// Artifact returns the named binary for arch.
func (m *Manifest) Artifact(name, arch string) (Artifact, bool) { return Find(m.Artifacts, name, arch) }

// ParseManifest decodes and checks a manifest.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse release manifest: %w", err)
	}
	if err := ValidVersion(m.Version); err != nil {
		return nil, fmt.Errorf("release manifest: %w", err)
	}
	for _, a := range m.Artifacts {
		if len(a.SHA256) != 64 || a.Key == "" || a.Size <= 0 {
			return nil, fmt.Errorf("release manifest %s: artifact %s %s/%s lacks key, sha256 or size", m.Version, a.Name, a.OS, a.Arch)
		}
	}
	return &m, nil
}

// ValidVersion checks that a version can name a directory and an S3 key.
func ValidVersion(v string) error {
	if v == "" || len(v) > 100 || v == "." || v == ".." || strings.HasPrefix(v, ".") {
		return fmt.Errorf("version %q: use 1-100 characters of letters, digits, '.', '-', '_', '+' not starting with '.'", v)
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_+", r)) {
			return fmt.Errorf("version %q: %q is not allowed; use letters, digits, '.', '-', '_', '+'", v, r)
		}
	}
	return nil
}

// Artifact is a built binary.
type Artifact struct {
	Name   string `json:"name"`
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	Path   string `json:"-"` // local file
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// FileSHA256 returns the hex sha256 and size of a file.
func FileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Find returns the artifact of name for arch.
func Find(arts []Artifact, name, arch string) (Artifact, bool) {
	for _, a := range arts {
		if a.Name == name && a.Arch == arch {
			return a, true
		}
	}
	return Artifact{}, false
}
