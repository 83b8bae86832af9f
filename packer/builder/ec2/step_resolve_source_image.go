package ec2

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepResolveSourceImage turns source_ami_parameter (or source_ami) into an image id that
// exists, before anything is launched: an unknown base image fails here with nothing to
// clean up. Cleanup has nothing to undo.
type stepResolveSourceImage struct{}

func (s *stepResolveSourceImage) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg, cl, ui := getConfig(state), getClients(state), getUI(state)
	id := cfg.SourceAMI
	if id == "" {
		out, err := cl.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(cfg.SourceAMIParameter)})
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return halt(state, "unknown base image: SSM parameter %s does not exist in %s; check source_ami_parameter (default %s)", cfg.SourceAMIParameter, cfg.Region, DefaultSourceParameter)
		}
		if err != nil {
			return halt(state, "read base image parameter %s: %w", cfg.SourceAMIParameter, err)
		}
		id = aws.ToString(out.Parameter.Value)
	}
	out, err := cl.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil || len(out.Images) == 0 {
		if err == nil {
			err = errors.New("no such image")
		}
		return halt(state, "unknown base image %s in %s: %w; check source_ami / source_ami_parameter", id, cfg.Region, err)
	}
	ui.Say("Base image " + id + " (" + aws.ToString(out.Images[0].Name) + ")")
	state.Put(keySourceImage, id)
	return multistep.ActionContinue
}

func (s *stepResolveSourceImage) Cleanup(multistep.StateBag) {}
