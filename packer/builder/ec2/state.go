package ec2

import (
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// State bag keys; "communicator", "hook", "ui" and "error" are the SDK's own names.
const (
	keyConfig      = "config"
	keyClients     = "zops_clients"
	keyUI          = "ui"
	keyHook        = "hook"
	keyError       = "error"
	keyComm        = "communicator"
	keySourceImage = "zops_source_image"
	keyInstance    = "instance_id"
	keyImage       = "zops_image_id"
	keyImageSnaps  = "zops_image_snapshots"
)

func getConfig(s multistep.StateBag) *Config     { return s.Get(keyConfig).(*Config) }
func getClients(s multistep.StateBag) *Clients   { return s.Get(keyClients).(*Clients) }
func getUI(s multistep.StateBag) packersdk.Ui    { return s.Get(keyUI).(packersdk.Ui) }
func getSourceImage(s multistep.StateBag) string { return stringOf(s, keySourceImage) }
func getInstance(s multistep.StateBag) string    { return stringOf(s, keyInstance) }
func getImage(s multistep.StateBag) string       { return stringOf(s, keyImage) }

func stringOf(s multistep.StateBag, k string) string {
	v, _ := s.GetOk(k)
	str, _ := v.(string)
	return str
}

func halt(s multistep.StateBag, format string, a ...any) multistep.StepAction {
	err := fmt.Errorf(format, a...)
	s.Put(keyError, err)
	getUI(s).Error(err.Error())
	return multistep.ActionHalt
}

func failed(s multistep.StateBag) bool {
	_, cancelled := s.GetOk(multistep.StateCancelled)
	_, halted := s.GetOk(multistep.StateHalted)
	return cancelled || halted
}
