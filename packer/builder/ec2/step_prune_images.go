package ec2

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/shtetl/zmanim-ops/internal/ami"
)

// stepPruneImages deletes the family's images beyond the newest keep_images, with their
// snapshots, never one an instance or the image parameter uses (internal/ami, the same code
// as `mage ami:prune`). A failure to prune is reported but does not fail the build: the new
// image is made and published. Cleanup has nothing to undo (deletion is final, and only
// images no one uses are deleted).
type stepPruneImages struct{}

func (s *stepPruneImages) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg, cl, ui := getConfig(state), getClients(state), getUI(state)
	if *cfg.KeepImages == 0 {
		return multistep.ActionContinue
	}
	l, err := ami.List(ctx, cl.EC2, cl.SSM, ami.Family{Name: cfg.ImageName, Parameter: cfg.ImageParameter})
	if err != nil {
		ui.Error(fmt.Sprintf("prune skipped: %v", err))
		return multistep.ActionContinue
	}
	var out strings.Builder
	if err := ami.Apply(ctx, cl.EC2, ami.PlanPrune(l, *cfg.KeepImages), false, &out); err != nil {
		ui.Error(fmt.Sprintf("prune: %v", err))
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line != "" {
			ui.Message(line)
		}
	}
	return multistep.ActionContinue
}

func (s *stepPruneImages) Cleanup(multistep.StateBag) {}
