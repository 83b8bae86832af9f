package local

import (
	"context"
	"errors"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/chroot"
	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Builder is the zops-local builder.
type Builder struct {
	config Config
	runner multistep.Runner

	// debootstrap replaces the real debootstrap in tests; nil in production.
	debootstrap func(ctx context.Context, cfg *Config, dir string, ui packersdk.Ui) error
}

var _ packersdk.Builder = (*Builder)(nil)

func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

func (b *Builder) Prepare(raws ...interface{}) ([]string, []string, error) {
	warnings, err := b.config.Prepare(raws...)
	return nil, warnings, err
}

// Run builds the root. The steps, in order:
func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	steps := []multistep.Step{
		// output_dir becomes a copy of the cached debootstrap base (debootstrapped first if
		// the cache lacks it); removed again if the build fails.
		&stepCreateRoot{debootstrap: b.debootstrap},
		// the host's resolv.conf for apt; the root's own is put back afterwards.
		&stepCopyResolvConf{},
		// policy-rc.d exit 101: packages install but start nothing; removed afterwards.
		&stepInstallPolicy{},
		// proc, sys, dev, devpts, a private dev/shm; processes left in the chroot are
		// stopped and everything is unmounted afterwards, whatever happened.
		&stepMountFilesystems{},
		// the template's provisioners, through the SDK's chroot communicator.
		&chroot.StepChrootProvision{},
	}

	state := new(multistep.BasicStateBag)
	state.Put(keyConfig, &b.config)
	state.Put(keyUI, ui)
	state.Put(keyHook, hook)
	state.Put(keyWrapper, common.CommandWrapper(func(cmd string) (string, error) { return cmd, nil }))

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
	root, _ := getRoot(state)
	return &Artifact{Root: root, StateData: map[string]interface{}{"generated_data": state.Get("generated_data")}}, nil
}
