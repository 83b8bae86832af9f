package pgtool

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestServerUser(t *testing.T) {
	cred, err := ServerUser()
	if os.Geteuid() != 0 {
		if cred != nil || err != nil {
			t.Fatalf("not root: got %v %v, want nil", cred, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("root with the postgresql package installed: %v", err)
	}
	if cred == nil || cred.Uid == 0 {
		t.Fatalf("root: credential %+v, want the postgres user", cred)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "sub", "file")
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ChownTree(cred, dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Dir(f), f} {
		fi, _ := os.Stat(p)
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != cred.Uid || st.Gid != cred.Gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, cred.Uid, cred.Gid)
		}
	}
	if err := ChownTree(nil, "/nonexistent"); err != nil {
		t.Errorf("nil credential must be a no-op: %v", err)
	}
}
