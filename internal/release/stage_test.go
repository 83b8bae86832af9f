package release

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/onbox"
)

type plainDeployer struct{}

func (plainDeployer) Where() string { return "a box" }
func (plainDeployer) Deploy(context.Context, string) (onbox.Outcome, error) {
	return onbox.Outcome{}, nil
}

type stagingDeployer struct {
	plainDeployer
	staged []string
	err    error
}

func (s *stagingDeployer) Stage(_ context.Context, v string) error {
	s.staged = append(s.staged, v)
	return s.err
}

func TestStageStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := func() string { return "v9" }
	// A deployer that installs within its deploy: the step is skipped, saying why.
	s := &Stage{Deployer: plainDeployer{}, Version: v}
	if skip, why := s.Skip(ctx); !skip || !strings.Contains(why, "deploy step installs") {
		t.Errorf("Skip = %v %q", skip, why)
	}
	if !strings.Contains(s.String(), "ahead of the switch") {
		t.Errorf("String = %q", s.String())
	}
	// A stager installs the version; its error names the version.
	d := &stagingDeployer{}
	s = &Stage{Deployer: d, Version: v}
	if skip, _ := s.Skip(ctx); skip {
		t.Fatal("a stager was skipped")
	}
	if err := s.Run(ctx); err != nil || len(d.staged) != 1 || d.staged[0] != "v9" {
		t.Fatalf("Run: %v, staged %v", err, d.staged)
	}
	d.err = onbox.ErrChecksum
	if err := s.Run(ctx); !errors.Is(err, onbox.ErrChecksum) || !strings.Contains(err.Error(), "v9") {
		t.Errorf("err = %v", err)
	}
}
