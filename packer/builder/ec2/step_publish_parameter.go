package ec2

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepPublishParameter writes the image id to image_parameter with DataType aws:ec2:image and
// reads it back until it shows the new id: SSM validates that data type asynchronously, so a
// successful PutParameter does not mean the value was stored. Cleanup puts the previous value
// back when the build does not finish after publishing.
type stepPublishParameter struct {
	poll    time.Duration
	timeout time.Duration

	published bool
	previous  string
}

func (s *stepPublishParameter) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg, cl, ui := getConfig(state), getClients(state), getUI(state)
	if cfg.ImageParameter == "" {
		ui.Say("No image_parameter: the image id is not published")
		return multistep.ActionContinue
	}
	id := getImage(state)
	prev, err := readParameter(ctx, cl.SSM, cfg.ImageParameter)
	if err != nil {
		return halt(state, "%w", err)
	}
	s.previous = prev
	if err := putImageParameter(ctx, cl.SSM, cfg.ImageParameter, id); err != nil {
		return halt(state, "%w", err)
	}
	s.published = true
	poll, timeout := s.poll, s.timeout
	if poll == 0 {
		poll = 2 * time.Second
	}
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	for {
		got, err := readParameter(ctx, cl.SSM, cfg.ImageParameter)
		if err != nil {
			return halt(state, "%w", err)
		}
		if got == id {
			ui.Say(fmt.Sprintf("Published %s to %s (was %q)", id, cfg.ImageParameter, prev))
			return multistep.ActionContinue
		}
		if time.Now().After(deadline) {
			return halt(state, "parameter %s still reads %q, not %s, %s after PutParameter: SSM rejected the aws:ec2:image value asynchronously (is the image in this region and available?)", cfg.ImageParameter, got, id, timeout)
		}
		select {
		case <-ctx.Done():
			return halt(state, "publish %s: %w", cfg.ImageParameter, ctx.Err())
		case <-time.After(poll):
		}
	}
}

func (s *stepPublishParameter) Cleanup(state multistep.StateBag) {
	if !s.published || !failed(state) || s.previous == "" {
		return
	}
	cfg, cl, ui := getConfig(state), getClients(state), getUI(state)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := putImageParameter(ctx, cl.SSM, cfg.ImageParameter, s.previous); err != nil {
		ui.Error(fmt.Sprintf("cleanup: restore %s to %s: %v", cfg.ImageParameter, s.previous, err))
		return
	}
	ui.Say(fmt.Sprintf("Restored %s to %s", cfg.ImageParameter, s.previous))
}

func readParameter(ctx context.Context, api SSMAPI, name string) (string, error) {
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read parameter %s: %w", name, err)
	}
	return aws.ToString(out.Parameter.Value), nil
}

func putImageParameter(ctx context.Context, api SSMAPI, name, id string) error {
	_, err := api.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(id), Type: ssmtypes.ParameterTypeString,
		DataType: aws.String("aws:ec2:image"), Overwrite: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("publish %s to %s: %w", id, name, err)
	}
	return nil
}
