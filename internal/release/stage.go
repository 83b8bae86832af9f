package release

import (
	"context"
	"fmt"
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
	return "install on " + s.Deployer.Where() + " ahead of the switch (download, sha256, ELF check)"
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

// Stage installs version with the agent (the twin: in this process).
func (l *LocalDeployer) Stage(ctx context.Context, version string) error {
	return l.Agent.Install(ctx, version)
}

var _ Stager = (*LocalDeployer)(nil)
