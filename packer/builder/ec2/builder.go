package ec2

import (
	"context"
	"errors"
	"fmt"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Builder is the zops-ec2 builder.
type Builder struct {
	config Config
	runner multistep.Runner

	// clients replaces the real AWS clients in tests; poll shortens every wait.
	clients *Clients
	poll    time.Duration
	// publishTimeout bounds the read-back of the published parameter (default 2m).
	publishTimeout time.Duration
}

var _ packersdk.Builder = (*Builder)(nil)

func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

func (b *Builder) Prepare(raws ...interface{}) ([]string, []string, error) {
	warnings, err := b.config.Prepare(raws...)
	return nil, warnings, err
}

// Run builds the image. The steps, in order:
func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	cl := b.clients
	if cl == nil {
		var err error
		if cl, err = newClients(ctx, b.config.Region); err != nil {
			return nil, err
		}
	}
	steps := []multistep.Step{
		// the base image id from its SSM parameter; an unknown one stops the build here.
		&stepResolveSourceImage{},
		// the build instance; always terminated at the end.
		&stepLaunchInstance{poll: b.poll},
		// its SSM agent online.
		&stepWaitAgent{poll: b.poll},
		// the SSM/S3 communicator; staged objects always deleted at the end.
		&stepConnectSSM{poll: b.poll},
		// the template's provisioners (upload files and recipe, run run.sh).
		new(commonsteps.StepProvision),
		// stopped, for a consistent image.
		&stepStopInstance{poll: b.poll},
		// the tagged image, available; deregistered if a later step fails.
		&stepCreateImage{poll: b.poll},
		// its id in image_parameter, read back; the old value restored if a later step fails.
		&stepPublishParameter{poll: b.poll, timeout: b.publishTimeout},
		// old images of the family beyond keep_images, never one in use.
		&stepPruneImages{},
	}
	state := new(multistep.BasicStateBag)
	state.Put(keyConfig, &b.config)
	state.Put(keyClients, cl)
	state.Put(keyUI, ui)
	state.Put(keyHook, hook)

	b.runner = commonsteps.NewRunner(steps, b.config.PackerConfig, ui)
	b.runner.Run(ctx, state)

	if err, ok := state.GetOk(keyError); ok {
		return nil, err.(error)
	}
	if _, ok := state.GetOk(multistep.StateCancelled); ok {
		return nil, errors.New("build was cancelled")
	}
	if _, ok := state.GetOk(multistep.StateHalted); ok {
		return nil, errors.New("build was halted")
	}
	return &Artifact{Region: b.config.Region, ImageID: getImage(state), ec2: cl.EC2,
		StateData: map[string]interface{}{"generated_data": state.Get("generated_data")}}, nil
}

// newClients builds the real clients from the default credential chain, refusing clearly
// when there are no credentials (before anything is launched).
func newClients(ctx context.Context, region string) (*Clients, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoCredentials, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		return nil, fmt.Errorf("%w: configure a profile (AWS_PROFILE), SSO or the OIDC role; nothing was launched: %v", errNoCredentials, err)
	}
	s3c := s3.NewFromConfig(cfg)
	return &Clients{
		EC2:     ec2.NewFromConfig(cfg),
		SSM:     ssm.NewFromConfig(cfg),
		S3:      s3c,
		Presign: s3.NewPresignClient(s3c),
	}, nil
}
