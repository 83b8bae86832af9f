package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepCopyResolvConf gives the chroot the host's DNS configuration so apt can reach the
// mirror; Cleanup always restores the root's own file (or symlink), so the host's resolvers
// do not end up in the image.
type stepCopyResolvConf struct {
	hostFile string // defaults to /etc/resolv.conf

	path    string
	saved   []byte
	link    string
	existed bool
}

func (s *stepCopyResolvConf) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	root, _ := getRoot(state)
	host := s.hostFile
	if host == "" {
		host = "/etc/resolv.conf"
	}
	content, err := os.ReadFile(host)
	if err != nil {
		return halt(state, fmt.Errorf("resolv.conf for the chroot: %w", err))
	}
	s.path = filepath.Join(root, "etc/resolv.conf")
	if fi, err := os.Lstat(s.path); err == nil {
		s.existed = true
		if fi.Mode()&os.ModeSymlink != 0 {
			s.link, _ = os.Readlink(s.path)
		} else if s.saved, err = os.ReadFile(s.path); err != nil {
			return halt(state, fmt.Errorf("resolv.conf: %w", err))
		}
		if err := os.Remove(s.path); err != nil {
			return halt(state, fmt.Errorf("resolv.conf: %w", err))
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return halt(state, fmt.Errorf("resolv.conf: %w", err))
	}
	if err := os.WriteFile(s.path, content, 0o644); err != nil {
		return halt(state, fmt.Errorf("resolv.conf: %w", err))
	}
	return multistep.ActionContinue
}

func (s *stepCopyResolvConf) Cleanup(state multistep.StateBag) {
	if s.path == "" {
		return
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		getUI(state).Error(fmt.Sprintf("cleanup: resolv.conf: %v", err))
		return
	}
	var err error
	switch {
	case !s.existed:
	case s.link != "":
		err = os.Symlink(s.link, s.path)
	default:
		err = os.WriteFile(s.path, s.saved, 0o644)
	}
	if err != nil {
		getUI(state).Error(fmt.Sprintf("cleanup: resolv.conf: %v", err))
	}
}
