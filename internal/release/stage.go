package release

import (
	"context"
	"fmt"
	"strings"
)

// Stager is a Deployer that can install a version on the box ahead of the switch: download,
// checksum and ELF check, written side by side under releases/. Deploy then finds it
// installed (and verifies it again) and goes straight to the switch, so the part of a
// release that users feel (swap, reload, health gate) is not preceded by seconds of
// download and hashing on the box.
type Stager interface {
	Stage(ctx context.Context, version string) error
}

// Stage is the pipeline step that installs the version on the box before the deploy step.
type Stage struct {
	Deployer Deployer
	Version  func() string
}

func (s *Stage) String() string {
	return "install on " + s.Deployer.Where() + " ahead of the switch (download, sha256, ELF check, prune old installs)"
}

// Skip skips deployers that cannot install ahead (their deploy installs).
func (s *Stage) Skip(context.Context) (bool, string) {
	if _, ok := s.Deployer.(Stager); !ok {
		return true, "the deploy step installs it"
	}
	return false, ""
}

// Run installs.
func (s *Stage) Run(ctx context.Context) error {
	st, ok := s.Deployer.(Stager)
	if !ok {
		return nil
	}
	if err := st.Stage(ctx, s.Version()); err != nil {
		return fmt.Errorf("install %s on the box: %w", s.Version(), err)
	}
	return nil
}

// Stage installs version with the agent (the twin: in this process), then prunes installs
// beyond release.keep (never the serving one or the new one), so that the deploy after it
// only switches.
func (l *LocalDeployer) Stage(ctx context.Context, version string) error {
	if err := l.Agent.Install(ctx, version); err != nil {
		return err
	}
	if removed, err := l.Agent.Prune(version); err == nil && len(removed) > 0 && l.Agent.Out != nil {
		fmt.Fprintf(l.Agent.Out, "  removed old installs: %s\n", strings.Join(removed, ", "))
	}
	return nil
}

var _ Stager = (*LocalDeployer)(nil)
