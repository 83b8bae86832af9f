package boxbuild

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/shtetl/zmanim-ops/internal/boxspec"
)

// VerifyUnits runs `systemd-analyze verify --root=ROOT` on every unit of the contract (the
// templated notify unit through an instance) and on the journal export the recipe writes:
// unknown settings, missing executables in the root and broken dependencies fail it.
func VerifyUnits(ctx context.Context, root string) (int, error) {
	var units []string
	for _, u := range append(boxspec.Units(), "zmanim-journal-export.service") {
		if strings.HasSuffix(u, "@.service") {
			u = strings.TrimSuffix(u, "@.service") + "@" + boxspec.UnitBackup + ".service"
		}
		units = append(units, u)
	}
	cmd := exec.CommandContext(ctx, "systemd-analyze", append([]string{"verify", "--man=no", "--root=" + root}, units...)...)
	cmd.Dir = "/"
	cmd.Env = append(cmd.Environ(), "SYSTEMD_LOG_LEVEL=warning")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		return 0, fmt.Errorf("systemd-analyze verify --root=%s: %v\n%s", root, err, strings.TrimSpace(string(out)))
	}
	return len(units), nil
}
