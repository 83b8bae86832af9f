package ec2

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepWaitAgent waits until the instance's SSM agent reports Online, the precondition of
// Run Command. AL2023 images ship the agent; the instance profile must allow it to register.
// Cleanup has nothing to undo.
type stepWaitAgent struct {
	poll time.Duration
}

func (s *stepWaitAgent) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg, cl, ui := getConfig(state), getClients(state), getUI(state)
	id := getInstance(state)
	poll := s.poll
	if poll == 0 {
		poll = 5 * time.Second
	}
	ui.Say("Waiting for the SSM agent of " + id)
	deadline := time.Now().Add(cfg.AgentTimeout)
	for {
		out, err := cl.SSM.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
			Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{id}}},
		})
		if err != nil {
			return halt(state, "ssm describe-instance-information %s: %w", id, err)
		}
		for _, info := range out.InstanceInformationList {
			if info.PingStatus == ssmtypes.PingStatusOnline {
				return multistep.ActionContinue
			}
		}
		if time.Now().After(deadline) {
			return halt(state, "the SSM agent of %s did not come online within %s: check that instance profile %s has AmazonSSMManagedInstanceCore and that subnet %q reaches SSM", id, cfg.AgentTimeout, cfg.InstanceProfile, cfg.SubnetID)
		}
		select {
		case <-ctx.Done():
			return halt(state, "wait for the SSM agent: %w", ctx.Err())
		case <-time.After(poll):
		}
	}
}

func (s *stepWaitAgent) Cleanup(multistep.StateBag) {}
