package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/shtetl/zmanim-ops/internal/pgtool"
)

// ManifestFile is written into every dump directory next to pg_dump's own files.
const ManifestFile = "zops-manifest.json"

// Manifest records what Restore must reproduce before pg_restore runs, chiefly the extension
// versions (a dump only says CREATE EXTENSION, never which version).
type Manifest struct {
	Created       time.Time   `json:"created"`
	Source        string      `json:"source"` // redacted
	ServerVersion string      `json:"server_version"`
	ServerNum     int         `json:"server_version_num"`
	Encoding      string      `json:"encoding"`
	Extensions    []Extension `json:"extensions"`
	Tables        int         `json:"tables"`
	Bytes         int64       `json:"bytes"` // total relation size on the source
	PgDump        string      `json:"pg_dump"`
	Jobs          int         `json:"jobs"`
	Seconds       float64     `json:"seconds"`
}

// DumpOptions configures Dump.
type DumpOptions struct {
	SourceURL string
	Dir       string // must not exist
	Jobs      int
	Out       io.Writer // progress and summary
	ExtraArgs []string  // passed to pg_dump (e.g. --exclude-table-data=...)
}

// ErrDirExists refuses to overwrite an earlier dump.
var ErrDirExists = errors.New("dump directory already exists")

// Dump writes a directory-format dump of the source with parallel jobs and a manifest.
func Dump(ctx context.Context, o DumpOptions) (Manifest, error) {
	start := time.Now()
	var m Manifest
	src, err := pgtool.ParseURL(o.SourceURL)
	if err != nil {
		return m, fmt.Errorf("source URL: %w", err)
	}
	if _, err := os.Stat(o.Dir); err == nil {
		return m, fmt.Errorf("%w: %s (choose another ZOPS_MIGRATE_DIR or remove it)", ErrDirExists, o.Dir)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(o.Dir)), 0o755); err != nil {
		return m, fmt.Errorf("create parent of %s: %w", o.Dir, err)
	}
	conn, err := connect(ctx, "source", src)
	if err != nil {
		return m, err
	}
	si, err := readServerInfo(ctx, conn)
	conn.Close(ctx)
	if err != nil {
		return m, fmt.Errorf("source %s: %w", src.Redacted(), err)
	}
	prog, err := pgtool.FindProgram(ctx, "pg_dump", si.major())
	if err != nil {
		return m, err
	}
	jobs := max(o.Jobs, 1)
	fmt.Fprintf(o.Out, "dump: source %s (PostgreSQL %s, %d tables, %s) -> %s with %d jobs (%s)\n",
		src.Redacted(), si.Version, si.Tables, humanBytes(si.Bytes), o.Dir, jobs, prog.Path)
	for _, e := range si.Extensions {
		fmt.Fprintf(o.Out, "dump: extension %s %s (schema %s)\n", e.Name, e.Version, e.Schema)
	}
	err = pgtool.Dump(ctx, pgtool.DumpOptions{
		Conn: src, Dir: o.Dir, Jobs: jobs, ServerMajor: si.major(), Tables: si.Tables + si.ExtConfigTables, ExtraArgs: o.ExtraArgs,
		OnProgress: func(p pgtool.Progress) { fmt.Fprintf(o.Out, "dump: %s\n", p) },
		OnWarning:  func(l string) { fmt.Fprintf(o.Out, "dump: %s\n", l) },
	})
	if err != nil {
		// The directory did not exist before: a partial dump must not pass for a whole one.
		_ = os.RemoveAll(o.Dir)
		return m, err
	}
	m = Manifest{Created: time.Now().UTC(), Source: src.Redacted(), ServerVersion: si.Version, ServerNum: si.VersionNum,
		Encoding: si.Encoding, Extensions: si.Extensions, Tables: si.Tables, Bytes: si.Bytes, PgDump: prog.Path, Jobs: jobs,
		Seconds: time.Since(start).Seconds()}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(o.Dir, ManifestFile), append(b, '\n'), 0o644); err != nil {
		return m, fmt.Errorf("write manifest: %w", err)
	}
	fmt.Fprintf(o.Out, "dump: done in %.1fs: %s (%s on disk)\n", m.Seconds, o.Dir, humanBytes(dirSize(o.Dir)))
	return m, nil
}

// ReadManifest reads the manifest of a dump directory.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return m, fmt.Errorf("read manifest of %s: %w (was the dump made by migrate:dump?)", dir, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("parse manifest of %s: %w", dir, err)
	}
	return m, nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
