// Package release ships a new build of the API to the box: an ordered pipeline of small steps
// (goreleaser-style pipes) — build, smoke, package, lock, upload, deploy, record, retention —
// run by `go tool mage release` against the local twin or production.
//
// Each step is a type with String() and Run(ctx) error; a step may also implement Skipper
// (a skip is a logged, typed value, not a failure) and Finisher (cleanup that runs whatever
// the outcome, in reverse order: the deploy lock is released, the history is recorded).
// Progress, timing and error wrapping are done once, around the steps, in Pipeline.Run.
//
// The on-box part of a deploy (download, verify, install side by side, atomic symlink swap,
// supervisor reload, health gate, automatic rollback) lives in internal/onbox and is
// shared by the twin (run in-process) and production (zops-box deploy, called over SSM).
package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Step is one stage of a pipeline.
type Step interface {
	// String is the one-line description shown in progress and dry-run output.
	String() string
	// Run does the work; an error stops the pipeline.
	Run(ctx context.Context) error
}

// Skipper is a step that may not apply to this run (e.g. nothing to prune).
type Skipper interface {
	// Skip reports whether to skip the step, and why.
	Skip(ctx context.Context) (bool, string)
}

// Finisher is a step that must clean up or report whatever the outcome of the pipeline
// (release the lock, record the history). Finish runs for the steps the pipeline reached (run
// or skipped),
// in reverse order; runErr is the pipeline's error (nil on success).
type Finisher interface {
	Finish(ctx context.Context, runErr error) error
}

// Pipeline runs steps in order.
type Pipeline struct {
	Name   string
	Steps  []Step
	Out    io.Writer // progress; io.Discard when nil
	DryRun bool      // print the plan, run nothing
	now    func() time.Time
}

// StepResult is the outcome of one step.
type StepResult struct {
	Step     string
	Skipped  string // reason when skipped
	Start    time.Time
	Duration time.Duration
	Err      error
}

// Summary is what a pipeline run did, step by step.
type Summary struct {
	Steps    []StepResult
	Duration time.Duration
}

// Run runs every step in order and stops at the first error, which it returns wrapped with
// the step's description. Finishers of the steps that were reached run afterwards.
func (p *Pipeline) Run(ctx context.Context) (Summary, error) {
	out := p.Out
	if out == nil {
		out = io.Discard
	}
	now := p.now
	if now == nil {
		now = time.Now
	}
	var sum Summary
	start := now()
	if p.DryRun {
		fmt.Fprintf(out, "%s: dry run, nothing is changed; the plan:\n", p.Name)
		for i, s := range p.Steps {
			line := fmt.Sprintf("  %d. %s", i+1, s)
			if sk, ok := s.(Skipper); ok {
				if skip, why := sk.Skip(ctx); skip {
					line += " (would be skipped: " + why + ")"
				}
			}
			fmt.Fprintln(out, line)
			sum.Steps = append(sum.Steps, StepResult{Step: s.String(), Skipped: "dry run"})
		}
		return sum, nil
	}
	var runErr error
	reached := 0
	for i, s := range p.Steps {
		if err := ctx.Err(); err != nil {
			runErr = fmt.Errorf("%s: %w", p.Name, err)
			break
		}
		desc := s.String()
		if sk, ok := s.(Skipper); ok {
			if skip, why := sk.Skip(ctx); skip {
				fmt.Fprintf(out, "• [%d/%d] %s — skipped: %s\n", i+1, len(p.Steps), desc, why)
				sum.Steps = append(sum.Steps, StepResult{Step: desc, Skipped: why})
				continue
			}
		}
		fmt.Fprintf(out, "• [%d/%d] %s\n", i+1, len(p.Steps), desc)
		reached = i + 1
		t0 := now()
		err := s.Run(ctx)
		d := now().Sub(t0)
		sum.Steps = append(sum.Steps, StepResult{Step: desc, Start: t0, Duration: d, Err: err})
		if err != nil {
			fmt.Fprintf(out, "  ✗ %s failed after %s\n", desc, round(d))
			runErr = fmt.Errorf("%s: %w", desc, err)
			break
		}
		fmt.Fprintf(out, "  ✓ %s\n", round(d))
	}
	// Finishers run even when ctx is cancelled: a lock must not outlive an interrupted run.
	fctx := context.WithoutCancel(ctx)
	for i := reached - 1; i >= 0; i-- {
		if f, ok := p.Steps[i].(Finisher); ok {
			if err := f.Finish(fctx, runErr); err != nil {
				fmt.Fprintf(out, "  ! %s: cleanup: %v\n", p.Steps[i], err)
				runErr = errors.Join(runErr, fmt.Errorf("%s: cleanup: %w", p.Steps[i], err))
			}
		}
	}
	sum.Duration = now().Sub(start)
	return sum, runErr
}

// Table renders the per-step times.
func (s Summary) Table() string {
	var b strings.Builder
	for _, r := range s.Steps {
		name := r.Step
		if len(name) > 60 {
			name = name[:59] + "…"
		}
		switch {
		case r.Skipped != "":
			fmt.Fprintf(&b, "  %-60s %9s  (%s)\n", name, "skipped", r.Skipped)
		case r.Err != nil:
			fmt.Fprintf(&b, "  %-60s %9s  FAILED\n", name, round(r.Duration))
		default:
			fmt.Fprintf(&b, "  %-60s %9s\n", name, round(r.Duration))
		}
	}
	fmt.Fprintf(&b, "  %-60s %9s\n", "total", round(s.Duration))
	return b.String()
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}
