package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
)

// RestoreOptions configures Restore.
type RestoreOptions struct {
	TargetURL string
	Dir       string
	Jobs      int
	Out       io.Writer
	// KeepOwners restores ownership and GRANTs; by default they are skipped because a managed
	// source's roles do not exist on the box.
	KeepOwners bool
	// AllowNonEmpty restores into a database that already holds tables.
	AllowNonEmpty bool
	// AllowExtensionMismatch accepts an extension version on the target different from the
	// source's (verify then reports the difference).
	AllowExtensionMismatch bool
	// UseList restores only the entries of a pg_restore TOC list (edit `pg_restore -l` output).
	UseList string
	// NoAnalyze skips ANALYZE after the restore.
	NoAnalyze bool
}

// Errors of Restore that need the operator's decision.
var (
	ErrTargetNotEmpty    = errors.New("target database is not empty")
	ErrExtensionMismatch = errors.New("extension version not available on target")
)

// Restore creates the source's extensions at the source's versions, then runs pg_restore with
// parallel jobs, then ANALYZE.
func Restore(ctx context.Context, o RestoreOptions) error {
	start := time.Now()
	tgt, err := pgtool.ParseURL(o.TargetURL)
	if err != nil {
		return fmt.Errorf("target URL: %w", err)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "toc.dat")); err != nil {
		return fmt.Errorf("%s is not a directory-format dump (no toc.dat); run migrate:dump first", o.Dir)
	}
	m, err := ReadManifest(o.Dir)
	if err != nil {
		fmt.Fprintf(o.Out, "restore: warning: %v; extension versions cannot be checked\n", err)
	}
	conn, err := connect(ctx, "target", tgt)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	si, err := readServerInfo(ctx, conn)
	if err != nil {
		return fmt.Errorf("target %s: %w", tgt.Redacted(), err)
	}
	fmt.Fprintf(o.Out, "restore: %s -> target %s (PostgreSQL %s, source was %s)\n", o.Dir, tgt.Redacted(), si.Version, orUnknown(m.ServerVersion))
	if si.Tables > 0 && !o.AllowNonEmpty {
		return fmt.Errorf("%w: %s holds %d tables; restore into a new database (CREATE DATABASE ...) or set ZOPS_MIGRATE_ALLOW_NONEMPTY=1",
			ErrTargetNotEmpty, tgt.Redacted(), si.Tables)
	}
	if m.Encoding != "" && m.Encoding != si.Encoding {
		return fmt.Errorf("target %s has encoding %s, the source %s: create the target database WITH ENCODING '%s' TEMPLATE template0",
			tgt.Redacted(), si.Encoding, m.Encoding, m.Encoding)
	}
	if err := createExtensions(ctx, conn, m.Extensions, si.Extensions, o); err != nil {
		return err
	}
	jobs := max(o.Jobs, 1)
	err = pgtool.Restore(ctx, pgtool.RestoreOptions{
		Conn: tgt, Dir: o.Dir, Jobs: jobs, NoOwner: !o.KeepOwners, NoPrivileges: !o.KeepOwners, ExitOnError: true,
		UseList:    o.UseList,
		OnProgress: func(p pgtool.Progress) { fmt.Fprintf(o.Out, "restore: %s\n", p) },
		OnWarning:  func(l string) { fmt.Fprintf(o.Out, "restore: %s\n", l) },
	})
	if err != nil {
		return fmt.Errorf("%w\nthe target now holds a partial restore: drop and recreate it (dropdb/createdb) before trying again", err)
	}
	if !o.NoAnalyze {
		fmt.Fprintf(o.Out, "restore: ANALYZE\n")
		if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
			return fmt.Errorf("analyze %s: %w", tgt.Redacted(), err)
		}
	}
	after, err := readServerInfo(ctx, conn)
	if err != nil {
		return fmt.Errorf("target %s: %w", tgt.Redacted(), err)
	}
	fmt.Fprintf(o.Out, "restore: done in %.1fs: %d tables, %s; next: go tool mage migrate:verify\n",
		time.Since(start).Seconds(), after.Tables, humanBytes(after.Bytes))
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// createExtensions installs each source extension on the target before pg_restore, at the
// source's version, so PostGIS types exist before tables use them and a silent upgrade cannot
// change function behaviour under the data.
func createExtensions(ctx context.Context, conn *pgx.Conn, want, have []Extension, o RestoreOptions) error {
	installed := map[string]string{}
	for _, e := range have {
		installed[e.Name] = e.Version
	}
	var problems []string
	for _, e := range want {
		if v, ok := installed[e.Name]; ok {
			state := "already installed, same version"
			if v != e.Version {
				if !o.AllowExtensionMismatch && e.Name != "plpgsql" {
					problems = append(problems, fmt.Sprintf("%s is installed at %s on the target, source has %s (ALTER EXTENSION %s UPDATE TO '%s', or set ZOPS_MIGRATE_ALLOW_EXTENSION_MISMATCH=1)",
						e.Name, v, e.Version, e.Name, e.Version))
					continue
				}
				state = "already installed at " + v + " (DIFFERENT)"
			}
			fmt.Fprintf(o.Out, "restore: extension %s source %s target %s: %s\n", e.Name, e.Version, v, state)
			continue
		}
		var versions []string
		rows, err := conn.Query(ctx, `SELECT version FROM pg_available_extension_versions WHERE name = $1 ORDER BY version`, e.Name)
		if err != nil {
			return fmt.Errorf("list versions of %s: %w", e.Name, err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return fmt.Errorf("list versions of %s: %w", e.Name, err)
			}
			versions = append(versions, v)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list versions of %s: %w", e.Name, err)
		}
		sql := fmt.Sprintf("CREATE SCHEMA IF NOT EXISTS %s; CREATE EXTENSION IF NOT EXISTS %s WITH SCHEMA %s",
			pgx.Identifier{e.Schema}.Sanitize(), pgx.Identifier{e.Name}.Sanitize(), pgx.Identifier{e.Schema}.Sanitize())
		switch {
		case len(versions) == 0:
			problems = append(problems, fmt.Sprintf("%s is not available on the target server (install its package, e.g. postgresql-<major>-postgis-3)", e.Name))
			continue
		case contains(versions, e.Version):
			sql += " VERSION " + quoteLiteral(e.Version)
		case !o.AllowExtensionMismatch:
			problems = append(problems, fmt.Sprintf("%s %s is not available on the target (available: %s); install that version or set ZOPS_MIGRATE_ALLOW_EXTENSION_MISMATCH=1",
				e.Name, e.Version, strings.Join(versions, ", ")))
			continue
		}
		if _, err := conn.Exec(ctx, sql+" CASCADE"); err != nil {
			return fmt.Errorf("create extension %s %s: %w", e.Name, e.Version, err)
		}
		var got string
		if err := conn.QueryRow(ctx, `SELECT extversion FROM pg_extension WHERE extname = $1`, e.Name).Scan(&got); err != nil {
			return fmt.Errorf("read version of %s: %w", e.Name, err)
		}
		mark := "same version"
		if got != e.Version {
			mark = "DIFFERENT (allowed by ZOPS_MIGRATE_ALLOW_EXTENSION_MISMATCH)"
		}
		fmt.Fprintf(o.Out, "restore: extension %s source %s target %s: created, %s\n", e.Name, e.Version, got, mark)
		installed[e.Name] = got
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w:\n  - %s", ErrExtensionMismatch, strings.Join(problems, "\n  - "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
