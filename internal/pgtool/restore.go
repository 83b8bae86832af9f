package pgtool

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// RestoreOptions configures a pg_restore from a directory-format dump.
type RestoreOptions struct {
	Conn Conn
	Dir  string
	Jobs int // parallel jobs; <1 means 1
	// NoOwner and NoPrivileges skip ownership and GRANTs, for moving between providers whose
	// roles differ (a managed service to a self-run box).
	NoOwner      bool
	NoPrivileges bool
	// ExitOnError stops at the first failing item instead of restoring the rest.
	ExitOnError bool
	// UseList restores only the entries of this TOC list file (pg_restore --use-list).
	UseList    string
	ExtraArgs  []string
	OnProgress func(Progress)
	OnWarning  func(line string)
}

// Serial phases print "processing item", the parallel loop "finished item"; each is counted once.
var restoreItemRe = regexp.MustCompile(`(?:processing|finished) item (\d+) (.+)$`)

// TOCEntry is one line of `pg_restore --list`.
type TOCEntry struct {
	ID   int
	Line string // the full list line, e.g. "3456; 0 16390 TABLE DATA public cities postgres"
	Desc string // e.g. "EXTENSION", "TABLE DATA", "INDEX"
	Name string // the object name part after the description
}

var tocRe = regexp.MustCompile(`^(\d+);\s+\d+\s+\d+\s+(.*)$`)

// descs lists the multi-word TOC descriptions, longest first, so parsing is unambiguous.
var tocDescs = []string{"TABLE DATA", "SEQUENCE SET", "SEQUENCE OWNED BY", "FK CONSTRAINT", "MATERIALIZED VIEW DATA",
	"MATERIALIZED VIEW", "DEFAULT ACL", "ACL", "COMMENT", "DEFAULT", "EXTENSION", "SCHEMA", "TABLE", "SEQUENCE",
	"INDEX", "CONSTRAINT", "TRIGGER", "FUNCTION", "VIEW", "TYPE", "DOMAIN", "POLICY", "ROW SECURITY", "RULE",
	"BLOBS", "BLOB", "PUBLICATION", "SUBSCRIPTION", "STATISTICS", "AGGREGATE", "PROCEDURE", "ENCODING", "STDSTRINGS",
	"SEARCHPATH", "DATABASE"}

// List returns the table of contents of a directory-format dump.
func List(ctx context.Context, dir string) ([]TOCEntry, error) {
	prog, err := FindProgram(ctx, "pg_restore", 0)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := Command{Program: prog, Args: []string{"--list", "--format=directory", dir}, Stdout: &out}
	if err := cmd.Run(ctx); err != nil {
		return nil, fmt.Errorf("list dump %s: %w", dir, err)
	}
	return ParseTOC(out.String()), nil
}

// ParseTOC parses `pg_restore --list` output.
func ParseTOC(s string) []TOCEntry {
	var entries []TOCEntry
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		m := tocRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		id, _ := strconv.Atoi(m[1])
		e := TOCEntry{ID: id, Line: line}
		rest := m[2]
		for _, d := range tocDescs {
			if strings.HasPrefix(rest, d+" ") || rest == d {
				e.Desc = d
				e.Name = strings.TrimSpace(strings.TrimPrefix(rest, d))
				break
			}
		}
		entries = append(entries, e)
	}
	return entries
}

// Restore runs pg_restore --format=directory --jobs=N into o.Conn's database.
func Restore(ctx context.Context, o RestoreOptions) error {
	prog, err := FindProgram(ctx, "pg_restore", 0)
	if err != nil {
		return err
	}
	total := 0
	inTOC := map[string]bool{}
	if o.OnProgress != nil {
		if toc, err := List(ctx, o.Dir); err == nil {
			total = len(toc)
			for _, e := range toc {
				inTOC[strconv.Itoa(e.ID)] = true
			}
		}
	}
	counted := map[string]bool{}
	jobs := max(o.Jobs, 1)
	// --dbname carries only the database name; host, user and password come from the environment.
	args := []string{"--format=directory", "--jobs=" + strconv.Itoa(jobs), "--dbname=" + o.Conn.Database, "--verbose", "--no-password"}
	if o.NoOwner {
		args = append(args, "--no-owner")
	}
	if o.NoPrivileges {
		args = append(args, "--no-privileges")
	}
	if o.ExitOnError {
		args = append(args, "--exit-on-error")
	}
	if o.UseList != "" {
		args = append(args, "--use-list="+o.UseList)
	}
	args = append(args, o.ExtraArgs...)
	args = append(args, o.Dir)
	var mu sync.Mutex
	done := 0
	cmd := Command{Program: prog, Args: args, Conn: o.Conn, OnStderrLine: func(line string) {
		if m := restoreItemRe.FindStringSubmatch(line); m != nil {
			mu.Lock()
			if counted[m[1]] || (total > 0 && !inTOC[m[1]]) {
				mu.Unlock()
				return
			}
			counted[m[1]] = true
			done++
			p := Progress{Done: done, Total: total, Item: m[2]}
			mu.Unlock()
			if o.OnProgress != nil {
				o.OnProgress(p)
			}
			return
		}
		if isProblem(line) && o.OnWarning != nil {
			o.OnWarning(line)
		}
	}}
	if err := cmd.Run(ctx); err != nil {
		return fmt.Errorf("pg_restore into %s: %w", o.Conn.Redacted(), err)
	}
	return nil
}

// Psql runs SQL through psql with ON_ERROR_STOP, for SQL files in runbooks and checks.
func Psql(ctx context.Context, conn Conn, sql string, stdout io.Writer) error {
	prog, err := FindProgram(ctx, "psql", 0)
	if err != nil {
		return err
	}
	cmd := Command{Program: prog, Conn: conn, Stdout: stdout,
		Args: []string{"--no-psqlrc", "--no-password", "--set=ON_ERROR_STOP=1", "--quiet", "--command=" + sql}}
	if err := cmd.Run(ctx); err != nil {
		return fmt.Errorf("psql %s: %w", conn.Redacted(), err)
	}
	return nil
}
