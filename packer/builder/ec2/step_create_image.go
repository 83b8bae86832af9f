package ec2

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/shtetl/zmanim-ops/internal/ami"
)

// stepCreateImage creates the image from the stopped instance, tagged (with its snapshots)
// zops:image=<image_name> plus image_tags, and waits until it is available. Cleanup
// deregisters it with its snapshots when the build does not finish, so a failed publish
// leaves no orphan image behind.
type stepCreateImage struct {
	poll time.Duration
	now  func() time.Time

	id string
}

func (s *stepCreateImage) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg, cl, ui := getConfig(state), getClients(state), getUI(state)
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	name := fmt.Sprintf("%s-%s", cfg.ImageName, now().UTC().Format("20060102T150405Z"))
	tags := tagList(cfg.BuildTags, cfg.ImageTags, map[string]string{"Name": name, ami.TagImage: cfg.ImageName})
	out, err := cl.EC2.CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId:  aws.String(getInstance(state)),
		Name:        aws.String(name),
		Description: aws.String("zmanim box built by zops-ec2 from " + getSourceImage(state)),
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeImage, Tags: tags},
			{ResourceType: ec2types.ResourceTypeSnapshot, Tags: tags},
		},
	})
	if err != nil {
		return halt(state, "create image %s: %w", name, err)
	}
	s.id = aws.ToString(out.ImageId)
	state.Put(keyImage, s.id)
	ui.Say(fmt.Sprintf("Creating image %s (%s); waiting until available", s.id, name))
	if err := s.waitAvailable(ctx, cl.EC2, cfg.ImageTimeout); err != nil {
		return halt(state, "%w", err)
	}
	return multistep.ActionContinue
}

func (s *stepCreateImage) waitAvailable(ctx context.Context, api EC2API, timeout time.Duration) error {
	poll := s.poll
	if poll == 0 {
		poll = 15 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		out, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{s.id}})
		if err != nil {
			return fmt.Errorf("wait for image %s: %w", s.id, err)
		}
		if len(out.Images) > 0 {
			switch out.Images[0].State {
			case ec2types.ImageStateAvailable:
				return nil
			case ec2types.ImageStateFailed, ec2types.ImageStateError, ec2types.ImageStateInvalid, ec2types.ImageStateDeregistered:
				reason := ""
				if out.Images[0].StateReason != nil {
					reason = aws.ToString(out.Images[0].StateReason.Message)
				}
				return fmt.Errorf("image %s is %s: %s", s.id, out.Images[0].State, reason)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("image %s not available after %s", s.id, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

func (s *stepCreateImage) Cleanup(state multistep.StateBag) {
	if s.id == "" || !failed(state) {
		return
	}
	cl, ui := getClients(state), getUI(state)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ui.Say("Deregistering image " + s.id + " of the failed build (with its snapshots)")
	if _, err := cl.EC2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(s.id), DeleteAssociatedSnapshots: aws.Bool(true)}); err != nil {
		ui.Error(fmt.Sprintf("cleanup: deregister %s: %v; remove it with `go tool mage ami:prune`", s.id, err))
		return
	}
	s.id = ""
}
