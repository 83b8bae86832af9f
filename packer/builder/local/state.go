package local

import (
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// State bag keys. "mount_path" and "wrappedCommand" are the names the SDK's
// chroot.StepChrootProvision reads; the rest are this builder's own.
const (
	keyConfig   = "config"
	keyUI       = "ui"
	keyHook     = "hook"
	keyError    = "error"
	keyRoot     = "mount_path"
	keyWrapper  = "wrappedCommand"
	keyCacheHit = "zops_cache_hit"
)

// Typed getters, so a step never asserts a bare interface{} itself.

func getConfig(s multistep.StateBag) *Config  { return s.Get(keyConfig).(*Config) }
func getUI(s multistep.StateBag) packersdk.Ui { return s.Get(keyUI).(packersdk.Ui) }

// getRoot returns the root directory once step_create_root has made it.
func getRoot(s multistep.StateBag) (string, bool) {
	v, ok := s.GetOk(keyRoot)
	if !ok {
		return "", false
	}
	return v.(string), true
}

// halt records err for the builder and stops the run.
func halt(s multistep.StateBag, err error) multistep.StepAction {
	s.Put(keyError, err)
	getUI(s).Error(err.Error())
	return multistep.ActionHalt
}

// failed reports whether the build did not finish: cleanups that only undo work of a failed
// build look here.
func failed(s multistep.StateBag) bool {
	_, cancelled := s.GetOk(multistep.StateCancelled)
	_, halted := s.GetOk(multistep.StateHalted)
	return cancelled || halted
}
