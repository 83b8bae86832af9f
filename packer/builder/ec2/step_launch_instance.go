package ec2

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepLaunchInstance launches the build instance (IMDSv2 only, no key pair, no public
// inbound rule needed) and waits until it runs. Cleanup always terminates it and waits
// until it is gone, on success too: the image outlives it.
type stepLaunchInstance struct {
	poll time.Duration

	id string
}

func (s *stepLaunchInstance) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg, cl, ui := getConfig(state), getClients(state), getUI(state)
	in := &ec2.RunInstancesInput{
		ImageId:            aws.String(getSourceImage(state)),
		InstanceType:       ec2types.InstanceType(cfg.InstanceType),
		MinCount:           aws.Int32(1),
		MaxCount:           aws.Int32(1),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String(cfg.InstanceProfile)},
		MetadataOptions:    &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired},
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
			DeviceName: aws.String("/dev/xvda"),
			Ebs:        &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(cfg.RootVolumeGB), VolumeType: ec2types.VolumeTypeGp3, DeleteOnTermination: aws.Bool(true), Encrypted: aws.Bool(true)},
		}},
		InstanceInitiatedShutdownBehavior: ec2types.ShutdownBehaviorTerminate,
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: tagList(map[string]string{"Name": "packer " + cfg.ImageName}, cfg.BuildTags)},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: tagList(cfg.BuildTags)},
			{ResourceType: ec2types.ResourceTypeNetworkInterface, Tags: tagList(cfg.BuildTags)},
		},
	}
	if cfg.SubnetID != "" {
		in.SubnetId = aws.String(cfg.SubnetID)
	}
	if len(cfg.SecurityGroupIDs) > 0 {
		in.SecurityGroupIds = cfg.SecurityGroupIDs
	}
	out, err := cl.EC2.RunInstances(ctx, in)
	if err != nil {
		return halt(state, "launch build instance from %s: %w", getSourceImage(state), err)
	}
	if len(out.Instances) == 0 {
		return halt(state, "launch build instance: RunInstances returned no instance")
	}
	s.id = aws.ToString(out.Instances[0].InstanceId)
	state.Put(keyInstance, s.id)
	ui.Say("Launched build instance " + s.id + "; waiting for it to run")
	if err := waitInstance(ctx, cl.EC2, s.id, ec2types.InstanceStateNameRunning, 10*time.Minute, s.poll); err != nil {
		return halt(state, "%w", err)
	}
	return multistep.ActionContinue
}

func (s *stepLaunchInstance) Cleanup(state multistep.StateBag) {
	if s.id == "" {
		return
	}
	cl, ui := getClients(state), getUI(state)
	// The build's context may be cancelled already: cleanup gets its own.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	ui.Say("Terminating build instance " + s.id)
	if _, err := cl.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{s.id}}); err != nil {
		ui.Error(fmt.Sprintf("cleanup: terminate %s: %v; terminate it by hand (aws ec2 terminate-instances --instance-ids %s)", s.id, err, s.id))
		return
	}
	if err := waitInstance(ctx, cl.EC2, s.id, ec2types.InstanceStateNameTerminated, 10*time.Minute, s.poll); err != nil {
		ui.Error(fmt.Sprintf("cleanup: %v", err))
		return
	}
	s.id = ""
}

// waitInstance polls until the instance reaches want; a terminated instance never comes back.
func waitInstance(ctx context.Context, api EC2API, id string, want ec2types.InstanceStateName, timeout, poll time.Duration) error {
	if poll == 0 {
		poll = 5 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			return fmt.Errorf("wait for %s to be %s: %w", id, want, err)
		}
		state := ec2types.InstanceStateName("")
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if i.State != nil {
					state = i.State.Name
				}
			}
		}
		if state == want {
			return nil
		}
		if state == ec2types.InstanceStateNameTerminated || (want == ec2types.InstanceStateNameRunning && state == ec2types.InstanceStateNameShuttingDown) {
			return fmt.Errorf("instance %s is %s, not %s", id, state, want)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("instance %s still %s after %s (want %s)", id, state, timeout, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// tagList merges tag maps (later ones win) into EC2 tags sorted by key.
func tagList(maps ...map[string]string) []ec2types.Tag {
	m := map[string]string{}
	for _, mm := range maps {
		for k, v := range mm {
			m[k] = v
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]ec2types.Tag, 0, len(keys))
	for _, k := range keys {
		tags = append(tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return tags
}
