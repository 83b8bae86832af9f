package daemon

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// pgReady is the twin's Requires=zmanim-postgres.service: systemd starts the API only while
// PostgreSQL's unit (Type=notify) is active, which is what the postmaster.pid in dataDir
// says: a live postmaster whose status line reads "ready". It opens no connection: each
// connection costs PostgreSQL a backend (fork, authentication) at the database's priority,
// which at every release took CPU from the API process still serving.
func pgReady(dataDir string) error {
	b, err := os.ReadFile(dataDir + "/postmaster.pid")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("PostgreSQL is not running (no %s/postmaster.pid): start the twin with `go tool mage twin:up`", dataDir)
		}
		return err
	}
	lines := strings.Split(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return fmt.Errorf("%s/postmaster.pid: no process id on its first line", dataDir)
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("PostgreSQL is not running (postmaster %d: %v): start the twin with `go tool mage twin:up`", pid, err)
	}
	// Line 8 is the postmaster's status (PostgreSQL 10 and later): starting, stopping, ready,
	// standby. A hot standby accepts connections, and its unit reports READY=1 then too.
	if len(lines) < 8 || (strings.TrimSpace(lines[7]) != "ready" && strings.TrimSpace(lines[7]) != "standby") {
		status := ""
		if len(lines) >= 8 {
			status = strings.TrimSpace(lines[7])
		}
		return fmt.Errorf("PostgreSQL (postmaster %d) is not ready: status %q", pid, status)
	}
	return nil
}
