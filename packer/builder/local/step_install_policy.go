package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// policyRC makes invoke-rc.d refuse every action while provisioning, so installing
// postgresql or redis-server does not start them inside the chroot (where they would hold
// the mounts and outlive the build). Debian's policy-rc.d interface: exit 101 = forbidden.
const policyRC = "#!/bin/sh\n# zops-local: no service starts while the image is provisioned.\nexit 101\n"

// stepInstallPolicy writes usr/sbin/policy-rc.d into the root; Cleanup always puts back what
// was there (nothing, on a fresh debootstrap), so the image never ships it.
type stepInstallPolicy struct {
	path    string
	saved   []byte
	hadFile bool
}

func (s *stepInstallPolicy) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	root, _ := getRoot(state)
	s.path = filepath.Join(root, "usr/sbin/policy-rc.d")
	if b, err := os.ReadFile(s.path); err == nil {
		s.saved, s.hadFile = b, true
	} else if !errors.Is(err, os.ErrNotExist) {
		return halt(state, fmt.Errorf("policy-rc.d: %w", err))
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return halt(state, fmt.Errorf("policy-rc.d: %w", err))
	}
	if err := os.WriteFile(s.path, []byte(policyRC), 0o755); err != nil {
		return halt(state, fmt.Errorf("policy-rc.d: %w", err))
	}
	return multistep.ActionContinue
}

func (s *stepInstallPolicy) Cleanup(state multistep.StateBag) {
	if s.path == "" {
		return
	}
	var err error
	if s.hadFile {
		err = os.WriteFile(s.path, s.saved, 0o755)
	} else if err = os.Remove(s.path); errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if err != nil {
		getUI(state).Error(fmt.Sprintf("cleanup: restore policy-rc.d: %v", err))
	}
}
