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

	"github.com/shtetl/zmanim-ops/internal/onbox"
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

// Package computes the release manifest from the built artifacts (sha256, size, keys) and
// writes it next to them.
type Package struct {
	Src       Source
	Artifacts func() []onbox.Artifact
	OutDir    string
	Who       string
	Out       io.Writer
	now       func() time.Time

	Manifest *onbox.Manifest // filled by Run
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
	m := &onbox.Manifest{
		Version: p.Src.Version, Commit: p.Src.Commit, CommitTime: p.Src.CommitTime,
		GoVersion: runtime.Version(), BuiltAt: now().UTC(), BuiltBy: p.Who, Dirty: p.Src.Dirty,
	}
	for _, a := range arts {
		// Re-hash: the manifest must describe the bytes that will be uploaded.
		sum, size, err := onbox.FileSHA256(a.Path)
		if err != nil {
			return err
		}
		if a.SHA256 != "" && sum != a.SHA256 {
			return fmt.Errorf("%s changed since it was built (sha256 %s, now %s); rebuild", a.Path, a.SHA256, sum)
		}
		a.SHA256, a.Size = sum, size
		a.Key = onbox.ArtifactKey(m.Version, a.Name, a.Arch)
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
