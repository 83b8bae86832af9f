package twin

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Packages are the Debian packages the twin needs, with a file that proves each is installed.
var Packages = []struct{ Name, Proof string }{
	{"postgresql-15", "/usr/lib/postgresql/15/bin/pg_ctl"},
	{"postgresql-15-postgis-3", "/usr/share/postgresql/15/extension/postgis.control"},
	{"redis-server", "/usr/bin/redis-server"},
	{"redis-tools", "/usr/bin/redis-cli"},
}

// EnsurePackages installs missing Debian packages when running as root on Debian, and
// otherwise fails with the exact command to run.
func EnsurePackages(ctx context.Context, out io.Writer) error {
	var missing []string
	for _, p := range Packages {
		if _, err := os.Stat(p.Proof); err != nil {
			// Another PostgreSQL major version with PostGIS also does (production runs 16).
			if strings.HasPrefix(p.Name, "postgresql-15") && otherPostgres(p.Name) {
				continue
			}
			missing = append(missing, p.Name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	cmdline := "apt-get update && apt-get install -y " + strings.Join(missing, " ")
	_, debErr := os.Stat("/etc/debian_version")
	if os.Geteuid() != 0 || debErr != nil {
		return fmt.Errorf("%w: %s; install them with: sudo sh -c '%s'", errMissingPackages, strings.Join(missing, ", "), cmdline)
	}
	fmt.Fprintf(out, "(installing %s) ", strings.Join(missing, " "))
	cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if b, err := cmd.CombinedOutput(); err != nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 10 {
			lines = lines[len(lines)-10:]
		}
		return fmt.Errorf("%w: `%s` failed: %v\n%s\nthe packages could not be installed; check the network to the Debian mirror and rerun", errMissingPackages, cmdline, err, strings.Join(lines, "\n"))
	}
	return nil
}

func otherPostgres(name string) bool {
	if name == "postgresql-15" {
		m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
		return len(m) > 0
	}
	m, _ := filepath.Glob("/usr/share/postgresql/*/extension/postgis.control")
	return len(m) > 0
}
