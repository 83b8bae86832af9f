package ec2

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepStopInstance stops the instance so the image is taken from quiet file systems.
// Cleanup has nothing to undo: the launch step terminates the instance anyway.
type stepStopInstance struct {
	poll time.Duration
}

func (s *stepStopInstance) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cl, ui, id := getClients(state), getUI(state), getInstance(state)
	ui.Say("Stopping " + id)
	if _, err := cl.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		return halt(state, "stop %s: %w", id, err)
	}
	if err := waitInstance(ctx, cl.EC2, id, ec2types.InstanceStateNameStopped, 10*time.Minute, s.poll); err != nil {
		return halt(state, "%w", err)
	}
	return multistep.ActionContinue
}

func (s *stepStopInstance) Cleanup(multistep.StateBag) {}
