package twin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/shtetl/zmanim-ops/internal/pgtool"
)

// relocatedPGRoot holds the twin's PostgreSQL files when the postgres user cannot reach the
// state directory (see pgDir).
var relocatedPGRoot = "/var/lib/zmanim-ops"

// pgDir is where the twin's PostgreSQL files live: <state>/pg, unless the server, which runs as
// the postgres user when we are root, cannot reach it. That is the case on a fresh machine where
// root cloned the repository into /root (mode 0700): initdb then failed with "Permission
// denied" on its own data directory. The files then go under /var/lib/zmanim-ops/twin-<hash of
// the state dir>/pg, where Debian keeps service data too, and <state>/pg becomes a symlink to
// it, so everything reading <state>/pg as root still finds them. Nothing of /root's mode is
// changed.
func (t *Twin) pgDir() string {
	p := t.st.Path("pg")
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return real
		}
	}
	cred, err := pgtool.ServerUser()
	if err != nil || cred == nil {
		return p
	}
	abs, err := filepath.Abs(p)
	if err != nil || reachable(filepath.Dir(abs), cred) {
		return p
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(relocatedPGRoot, "twin-"+hex.EncodeToString(sum[:6]), "pg")
}

// ensurePGDir creates the PostgreSQL directory and, when it is relocated, the symlink to it.
func (t *Twin) ensurePGDir() error {
	dir, link := t.pgDir(), t.st.Path("pg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if dir == link {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	if fi, err := os.Lstat(link); err == nil {
		if fi.Mode()&os.ModeSymlink != 0 {
			return nil
		}
		return fmt.Errorf("%s must move to %s (the postgres user cannot reach the state directory) but already exists: run `go tool mage twin:reset` or set ZOPS_STATE_DIR to a directory others may traverse", link, dir)
	}
	fmt.Fprintf(t.out, "(PostgreSQL files in %s: the postgres user cannot reach %s) ", dir, filepath.Dir(link))
	return os.Symlink(dir, link)
}

// pgLog is the server's log: in the PostgreSQL directory when it is relocated (pg_ctl opens it
// as the postgres user), with <state>/logs/postgres.log a symlink to it.
func (t *Twin) pgLog() string {
	if dir := t.pgDir(); dir != t.st.Path("pg") {
		return filepath.Join(dir, "postgres.log")
	}
	return t.st.Log("postgres")
}

// reachable reports whether cred's user may search every existing directory from dir up to /
// (directories still to be created are made 0755 by us).
func reachable(dir string, cred *syscall.Credential) bool {
	for d := dir; ; d = filepath.Dir(d) {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err == nil {
			perm := st.Mode & 0o777
			switch {
			case st.Uid == cred.Uid:
				if perm&0o100 == 0 {
					return false
				}
			case st.Gid == cred.Gid:
				if perm&0o010 == 0 {
					return false
				}
			default:
				if perm&0o001 == 0 {
					return false
				}
			}
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}
