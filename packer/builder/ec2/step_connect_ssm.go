package ec2

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepConnectSSM puts the SSM/S3 communicator into the state for the provisioners (the SDK's
// StepProvision reads "communicator"). Cleanup always deletes every object it staged in S3.
type stepConnectSSM struct {
	poll time.Duration

	comm *Communicator
}

func (s *stepConnectSSM) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	cfg, cl := getConfig(state), getClients(state)
	s.comm = &Communicator{
		InstanceID: getInstance(state),
		Bucket:     cfg.StagingBucket,
		Prefix:     fmt.Sprintf("%s%s/%s/", cfg.StagingPrefix, cfg.ImageName, randomID()),
		SSM:        cl.SSM,
		S3:         cl.S3,
		Presign:    cl.Presign,
		Timeout:    cfg.CommandTimeout,
		Poll:       s.poll,
	}
	state.Put(keyComm, s.comm)
	return multistep.ActionContinue
}

func (s *stepConnectSSM) Cleanup(state multistep.StateBag) {
	if s.comm == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := s.comm.DeleteStaged(ctx); err != nil {
		getUI(state).Error(fmt.Sprintf("cleanup: %v", err))
	}
}
