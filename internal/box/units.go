// Package box runs the API on one machine the way production does: a supervisor that holds
// the socket systemd passes it (LISTEN_FDS), starts the API binary with that socket, restarts
// it on failure, and on reload starts the new binary before stopping the old, so releases
// drop no request. Production runs it as zops-box under systemd (deploy/systemd); the local
// twin runs the same code in its daemon and takes its settings from the same unit files.
package box

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Unit is the part of a systemd unit file the supervisor mirrors.
type Unit struct {
	Requires        []string      // [Unit] Requires=
	After           []string      // [Unit] After=
	Type            string        // [Service] Type= (notify)
	Restart         string        // [Service] Restart= (on-failure, always, no)
	RestartSec      time.Duration // [Service] RestartSec=
	TimeoutStartSec time.Duration // [Service] TimeoutStartSec=
	TimeoutStopSec  time.Duration // [Service] TimeoutStopSec=
	ListenStream    string        // [Socket] ListenStream=
	Backlog         int           // [Socket] Backlog=
}

// ParseUnit reads the settings the supervisor uses from a unit file; systemd's defaults fill
// what the file does not set.
func ParseUnit(path string) (Unit, error) {
	u := Unit{Restart: "no", RestartSec: 100 * time.Millisecond, TimeoutStartSec: 90 * time.Second, TimeoutStopSec: 90 * time.Second, Type: "simple"}
	f, err := os.Open(path)
	if err != nil {
		return u, fmt.Errorf("read unit: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") || strings.HasPrefix(s, ";") || strings.HasPrefix(s, "[") {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return u, fmt.Errorf("%s:%d: %q is not key=value", path, line, s)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		var perr error
		switch k {
		case "Requires":
			u.Requires = append(u.Requires, strings.Fields(v)...)
		case "After":
			u.After = append(u.After, strings.Fields(v)...)
		case "Type":
			u.Type = v
		case "Restart":
			u.Restart = v
		case "RestartSec":
			u.RestartSec, perr = parseSec(v)
		case "TimeoutStartSec":
			u.TimeoutStartSec, perr = parseSec(v)
		case "TimeoutStopSec":
			u.TimeoutStopSec, perr = parseSec(v)
		case "ListenStream":
			u.ListenStream = v
		case "Backlog":
			u.Backlog, perr = strconv.Atoi(v)
		}
		if perr != nil {
			return u, fmt.Errorf("%s:%d: %s: %w", path, line, k, perr)
		}
	}
	return u, sc.Err()
}

// parseSec reads systemd time spans: "5", "5s", "500ms", "1min", "2m".
func parseSec(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	v = strings.ReplaceAll(strings.ReplaceAll(v, "min", "m"), " ", "")
	return time.ParseDuration(v)
}
