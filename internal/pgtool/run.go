package pgtool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
)

// ExitError is a client program that ran and failed. Stderr holds its last lines, which libpq
// never fills with passwords (they come from the pgpass file).
type ExitError struct {
	Program string
	Code    int
	Stderr  string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no error output"
	}
	return fmt.Sprintf("%s exited with status %d: %s", e.Program, e.Code, msg)
}

// Command is one client-program invocation against one connection.
type Command struct {
	Program Program
	Args    []string // never credentials: those travel through Conn.Env
	Conn    Conn
	// TempDir holds the temporary pgpass file; empty means the system default.
	TempDir string
	// Stdout receives the program's standard output; nil discards it.
	Stdout io.Writer
	// OnStderrLine is called for each line of standard error (progress and warnings).
	OnStderrLine func(line string)
}

const keepStderrLines = 20

// Run runs the command and returns an *ExitError when it fails.
func (c Command) Run(ctx context.Context) error {
	env, cleanup, err := c.Conn.Env(c.TempDir)
	if err != nil {
		return err
	}
	defer cleanup()
	cmd := exec.CommandContext(ctx, c.Program.Path, c.Args...)
	cmd.Env = env
	cmd.Stdout = c.Stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("run %s: %w", c.Program.Path, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", c.Program.Path, err)
	}
	var (
		mu   sync.Mutex
		tail []string
	)
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		mu.Lock()
		tail = append(tail, line)
		if len(tail) > keepStderrLines {
			tail = tail[1:]
		}
		mu.Unlock()
		if c.OnStderrLine != nil {
			c.OnStderrLine(line)
		}
	}
	werr := cmd.Wait()
	if werr == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("run %s: %w", c.Program.Path, ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		return &ExitError{Program: c.Program.Path, Code: ee.ExitCode(), Stderr: strings.Join(errorLines(tail), "\n")}
	}
	return fmt.Errorf("run %s: %w", c.Program.Path, werr)
}

// errorLines keeps the lines that explain a failure, dropping verbose progress chatter when
// there is something better to show.
func errorLines(tail []string) []string {
	var out []string
	for _, l := range tail {
		if strings.Contains(l, "error") || strings.Contains(l, "FATAL") || strings.Contains(l, "ERROR") ||
			strings.Contains(l, "DETAIL") || strings.Contains(l, "HINT") || strings.Contains(l, "warning") ||
			strings.Contains(l, "could not") || strings.Contains(l, "aborting") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return tail
	}
	return out
}
