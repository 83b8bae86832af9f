package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestPGReadyReadsThePostmasterStatus(t *testing.T) {
	dir := t.TempDir()
	write := func(pid int, status string) {
		t.Helper()
		body := strconv.Itoa(pid) + "\n" + dir + "\n1796016411\n5432\n/run\n127.0.0.1\n  5318150     65599\n" + status + "\n"
		if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := pgReady(dir); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("no postmaster.pid: %v", err)
	}
	write(os.Getpid(), "ready   ")
	if err := pgReady(dir); err != nil {
		t.Errorf("a live process marked ready: %v", err)
	}
	write(os.Getpid(), "standby ")
	if err := pgReady(dir); err != nil {
		t.Errorf("a hot standby: %v", err)
	}
	write(os.Getpid(), "stopping")
	if err := pgReady(dir); err == nil || !strings.Contains(err.Error(), `status "stopping"`) {
		t.Errorf("stopping: %v", err)
	}
	write(1<<22+12345, "ready   ") // above pid_max's default: no such process
	if err := pgReady(dir); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("a dead postmaster: %v", err)
	}
}
