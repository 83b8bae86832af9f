package pgtool

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// ServerUser returns the credential PostgreSQL's server programs must run with: the postgres
// user when we are root (initdb and postgres refuse to run as root), nil otherwise.
func ServerUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres user (from the postgresql package) to run the server: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// ChownTree gives the trees to cred's user (nil cred: nothing to do).
func ChownTree(cred *syscall.Credential, roots ...string) error {
	if cred == nil {
		return nil
	}
	for _, root := range roots {
		if err := filepath.Walk(root, func(path string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, int(cred.Uid), int(cred.Gid))
		}); err != nil {
			return fmt.Errorf("chown %s: %w", root, err)
		}
	}
	return nil
}
