package pgtool

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Progress is one step of a long pg_dump or pg_restore run.
type Progress struct {
	Done  int    // items finished so far
	Total int    // items expected; 0 when unknown
	Item  string // what just finished, e.g. "TABLE DATA public cities"
}

func (p Progress) String() string {
	if p.Total > 0 {
		return fmt.Sprintf("[%d/%d] %s", p.Done, p.Total, p.Item)
	}
	return fmt.Sprintf("[%d] %s", p.Done, p.Item)
}

// DumpOptions configures a directory-format pg_dump.
type DumpOptions struct {
	Conn Conn
	Dir  string // output directory; must not exist yet (pg_dump creates it)
	Jobs int    // parallel jobs; <1 means 1
	// ServerMajor is the source server's major version, used to pick a pg_dump that can read it.
	ServerMajor int
	// Tables is the number of tables with data, used only to show progress totals.
	Tables int
	// ExtraArgs are passed through (e.g. --exclude-table=...). Never put credentials here.
	ExtraArgs  []string
	OnProgress func(Progress)
	// OnWarning receives pg_dump warnings and errors as they appear.
	OnWarning func(line string)
}

var dumpTableRe = regexp.MustCompile(`dumping contents of table "?([^"]+)"?`)

// Dump runs pg_dump --format=directory --jobs=N.
func Dump(ctx context.Context, o DumpOptions) error {
	prog, err := FindProgram(ctx, "pg_dump", o.ServerMajor)
	if err != nil {
		return err
	}
	jobs := max(o.Jobs, 1)
	args := []string{"--format=directory", "--jobs=" + strconv.Itoa(jobs), "--file=" + o.Dir, "--verbose", "--no-password"}
	args = append(args, o.ExtraArgs...)
	var mu sync.Mutex
	done := 0
	cmd := Command{Program: prog, Args: args, Conn: o.Conn, OnStderrLine: func(line string) {
		if m := dumpTableRe.FindStringSubmatch(line); m != nil {
			mu.Lock()
			done++
			p := Progress{Done: done, Total: o.Tables, Item: m[1]}
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
		return fmt.Errorf("pg_dump %s: %w", o.Conn.Redacted(), err)
	}
	return nil
}

func isProblem(line string) bool {
	l := strings.ToLower(line)
	return strings.Contains(l, "warning") || strings.Contains(l, "error")
}
