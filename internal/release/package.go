package release

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Layout of the releases bucket.
//
//	releases/<version>/manifest.json        written last, with If-None-Match: * (the release exists once it does)
//	releases/<version>/linux-<arch>/<name>  the binaries, immutable
//	releases/current                         pointer: the version the box should run (JSON)
//	locks/deploy.json                        the deploy lock
//	history/<time>-<version>.json            one object per release attempt
const (
	CurrentKey    = "releases/current"
	LockKey       = "locks/deploy.json"
	HistoryPrefix = "history/"
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

// Package computes the release manifest from the built artifacts (sha256, size, keys) and
// writes it next to them.
type Package struct {
	Src       Source
	Artifacts func() []Artifact
	OutDir    string
	Who       string
	Out       io.Writer
	now       func() time.Time

	Manifest *Manifest // filled by Run
}

func (p *Package) String() string {
	return "package: sha256, size and manifest of " + p.Src.Version
}

// Run builds the manifest.
func (p *Package) Run(ctx context.Context) error {
	arts := p.Artifacts()
	if len(arts) == 0 {
		return fmt.Errorf("nothing was built")
	}
	now := time.Now
	if p.now != nil {
		now = p.now
	}
	m := &Manifest{
		Version: p.Src.Version, Commit: p.Src.Commit, CommitTime: p.Src.CommitTime,
		GoVersion: runtime.Version(), BuiltAt: now().UTC(), BuiltBy: p.Who, Dirty: p.Src.Dirty,
	}
	for _, a := range arts {
		// Re-hash: the manifest must describe the bytes that will be uploaded.
		sum, size, err := FileSHA256(a.Path)
		if err != nil {
			return err
		}
		if a.SHA256 != "" && sum != a.SHA256 {
			return fmt.Errorf("%s changed since it was built (sha256 %s, now %s); rebuild", a.Path, a.SHA256, sum)
		}
		a.SHA256, a.Size = sum, size
		a.Key = ArtifactKey(m.Version, a.Name, a.Arch)
		m.Artifacts = append(m.Artifacts, a)
		if p.Out != nil {
			fmt.Fprintf(p.Out, "  %-10s linux/%-6s %9d bytes  sha256 %s\n", a.Name, a.Arch, a.Size, a.SHA256)
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if p.OutDir != "" {
		if err := os.MkdirAll(p.OutDir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(p.OutDir, "manifest.json"), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	p.Manifest = m
	return nil
}
