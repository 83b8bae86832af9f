package pgtool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// ErrNoProgram reports that no suitable client program was found.
var ErrNoProgram = errors.New("PostgreSQL client program not found")

// DefaultSearchDirs are the directories searched (after ZOPS_PG_BIN_DIR) for versioned client
// programs: Debian/Ubuntu's /usr/lib/postgresql/<major>/bin and the PGDG RPM layout.
var DefaultSearchDirs = []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"}

var versionRe = regexp.MustCompile(`\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?`)

// Program is one located client program and its major version.
type Program struct {
	Path  string
	Major int
}

// FindProgram finds the client program name (pg_dump, pg_restore, psql) whose major version is at
// least minMajor, preferring the newest. pg_dump refuses servers newer than itself, so callers
// pass the server's major version. ZOPS_PG_BIN_DIR, when set, is searched alone.
func FindProgram(ctx context.Context, name string, minMajor int) (Program, error) {
	var candidates []string
	if d := config.PGBinDir(); d != "" {
		candidates = append(candidates, filepath.Join(d, name))
	} else {
		for _, pat := range DefaultSearchDirs {
			m, _ := filepath.Glob(filepath.Join(pat, name))
			candidates = append(candidates, m...)
		}
		if p, err := exec.LookPath(name); err == nil {
			candidates = append(candidates, p)
		}
	}
	var found []Program
	for _, c := range candidates {
		if _, err := os.Stat(c); err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, c, "--version").Output()
		if err != nil {
			continue
		}
		m := versionRe.FindSubmatch(out)
		if m == nil {
			continue
		}
		major, _ := strconv.Atoi(string(m[1]))
		found = append(found, Program{Path: c, Major: major})
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].Major > found[j].Major })
	if len(found) == 0 {
		return Program{}, fmt.Errorf("%w: %s (install postgresql-client, or set ZOPS_PG_BIN_DIR)", ErrNoProgram, name)
	}
	if found[0].Major < minMajor {
		return Program{}, fmt.Errorf("%w: %s %d is older than the server (%d); install postgresql-client-%d or set ZOPS_PG_BIN_DIR",
			ErrNoProgram, name, found[0].Major, minMajor, minMajor)
	}
	return found[0], nil
}
