package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// Results recorded in the history.
const (
	ResultReleased   = "released"    // the new version serves
	ResultRolledBack = "rolled-back" // health gate failed; the previous version serves
	ResultFailed     = "failed"      // stopped before or during the switch; the previous version serves
	ResultUnknown    = "unknown"     // the deploy was sent but its end not seen; check the box
)

// Kinds of history entries.
const (
	KindRelease  = "release"
	KindRollback = "rollback"
)

// Entry is one release attempt.
type Entry struct {
	Version  string    `json:"version"`
	Previous string    `json:"previous,omitempty"`
	Commit   string    `json:"commit,omitempty"`
	Who      string    `json:"who"`
	Message  string    `json:"message,omitempty"`
	Kind     string    `json:"kind"` // release | rollback
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Result   string    `json:"result"`
	Error    string    `json:"error,omitempty"`
	// Warning is a failure after the switch (retention, ...): the release serves anyway.
	Warning  string        `json:"warning,omitempty"`
	Duration time.Duration `json:"duration"`
	Env      string        `json:"env"`
}

// Record writes the history entry of this run once it is over, whatever the result (its Run
// only notes the start; it sits right after the lock so every locked attempt is recorded).
type Record struct {
	Store   onbox.Store
	Entry   Entry
	Outcome func() onbox.Outcome
	// Box reports whether the box switched; once it has, the entry says released (a later
	// failure is a warning) and a failed history write is a warning too.
	Box func() BoxState
	Out io.Writer
	now func() time.Time

	Written string // key written by Finish
}

func (r *Record) String() string {
	return fmt.Sprintf("record the result in s3://%s/%s (when the run ends)", r.Store.Bucket(), HistoryPrefix)
}

func (r *Record) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// Run notes the start.
func (r *Record) Run(ctx context.Context) error {
	r.Entry.Started = r.clock().UTC()
	return nil
}

// Finish writes the entry.
func (r *Record) Finish(ctx context.Context, runErr error) error {
	e := r.Entry
	e.Finished = r.clock().UTC()
	e.Duration = e.Finished.Sub(e.Started)
	if r.Outcome != nil {
		if o := r.Outcome(); o.Previous != "" {
			e.Previous = o.Previous
		}
	}
	box := BoxUnchanged
	if r.Box != nil {
		box = r.Box()
	}
	switch {
	case runErr == nil, box == BoxSwitched:
		e.Result = ResultReleased
		if runErr != nil {
			e.Warning = firstLine(runErr.Error())
		}
	case box == BoxUnknown:
		e.Result = ResultUnknown
		e.Error = firstLine(runErr.Error())
	case errors.Is(runErr, onbox.ErrHealthGate):
		e.Result = ResultRolledBack
		e.Error = firstLine(runErr.Error())
	default:
		e.Result = ResultFailed
		e.Error = firstLine(runErr.Error())
	}
	b, _ := json.MarshalIndent(e, "", "  ")
	key := HistoryPrefix + e.Started.Format("20060102T150405.000000000Z") + "-" + e.Version + ".json"
	if _, err := r.Store.Put(ctx, key, b, onbox.Cond{IfAbsent: true}); err != nil {
		if box == BoxSwitched {
			if r.Out != nil {
				fmt.Fprintf(r.Out, "  ! %s serves, but its history entry could not be written: %v\n", e.Version, err)
			}
			return nil
		}
		return fmt.Errorf("record history: %w", err)
	}
	r.Written = key
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// History reads every entry, oldest first.
func History(ctx context.Context, st onbox.Store) ([]Entry, error) {
	keys, err := st.List(ctx, HistoryPrefix)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, k := range keys {
		b, _, err := st.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		var e Entry
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("parse %s: %w", k, err)
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}

// Serving returns the version the history says serves now and the rollback target.
//
// The history is read as a stack of served versions: a successful release pushes its version;
// a successful rollback pops back down to the version it restored, and the version it rolled
// away from is never a rollback target again (until it is released again), so v1 -> v2 ->
// rollback -> rollback never returns to v2 (issue 14, finding 10). The target is the nearest
// version below the current one on the stack.
func Serving(h []Entry) (current, previous string) {
	var stack []string
	bad := map[string]bool{}
	for _, e := range h {
		if e.Result != ResultReleased {
			continue
		}
		if e.Kind == KindRollback {
			from := e.Previous
			if from == "" && len(stack) > 0 {
				from = stack[len(stack)-1]
			}
			if from != e.Version {
				bad[from] = true
			}
			for len(stack) > 0 && stack[len(stack)-1] != e.Version {
				stack = stack[:len(stack)-1]
			}
			if len(stack) == 0 {
				stack = append(stack, e.Version)
			}
			continue
		}
		delete(bad, e.Version) // released again on purpose: trusted again
		if len(stack) == 0 || stack[len(stack)-1] != e.Version {
			stack = append(stack, e.Version)
		}
	}
	if len(stack) == 0 {
		return "", ""
	}
	current = stack[len(stack)-1]
	for i := len(stack) - 2; i >= 0; i-- {
		if v := stack[i]; v != current && !bad[v] {
			return current, v
		}
	}
	return current, ""
}

// PrintHistory writes the history as a table, newest last.
func PrintHistory(w io.Writer, h []Entry) {
	fmt.Fprintf(w, "%-20s %-8s %-28s %-28s %-12s %-9s %s\n", "WHEN (UTC)", "KIND", "VERSION", "PREVIOUS", "RESULT", "TOOK", "WHO / MESSAGE / ERROR")
	for _, e := range h {
		note := e.Who
		if e.Message != "" {
			note += " — " + e.Message
		}
		if e.Error != "" {
			note += " — " + e.Error
		}
		fmt.Fprintf(w, "%-20s %-8s %-28s %-28s %-12s %-9s %s\n", e.Started.Format("2006-01-02 15:04:05"), e.Kind, e.Version, orNone(e.Previous), e.Result, round(e.Duration), note)
	}
	cur, prev := Serving(h)
	fmt.Fprintf(w, "serving: %s; rollback target: %s\n", orNone(cur), orNone(prev))
}

// Versions lists the released versions in the bucket (those with a manifest), oldest first.
func Versions(ctx context.Context, st onbox.Store) ([]*onbox.Manifest, error) {
	keys, err := st.List(ctx, "releases/")
	if err != nil {
		return nil, err
	}
	var ms []*onbox.Manifest
	for _, k := range keys {
		if !strings.HasSuffix(k, "/manifest.json") {
			continue
		}
		b, _, err := st.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		m, err := onbox.ParseManifest(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		ms = append(ms, m)
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].BuiltAt.Before(ms[j].BuiltAt) })
	return ms, nil
}

// Retention deletes the oldest releases from the bucket beyond Keep, never the version the
// pointer names, the one serving, or the rollback target. Binaries go before the manifest,
// so an interrupted prune leaves a listed (and later pruned) release, never a hidden one.
type Retention struct {
	Store   onbox.Store
	Keep    int
	Protect func() []string // e.g. the version just released
	Out     io.Writer

	Removed []string
}

func (r *Retention) String() string {
	return fmt.Sprintf("retention: keep the last %d releases in s3://%s", r.Keep, r.Store.Bucket())
}

// candidates returns the versions to delete.
func (r *Retention) candidates(ctx context.Context) ([]string, int, error) {
	ms, err := Versions(ctx, r.Store)
	if err != nil {
		return nil, 0, err
	}
	h, err := History(ctx, r.Store)
	if err != nil {
		return nil, 0, err
	}
	cur, prev := Serving(h)
	ptr, err := ReadPointer(ctx, r.Store)
	if err != nil {
		return nil, 0, err
	}
	protect := map[string]bool{cur: true, prev: true, ptr.Version: true}
	if r.Protect != nil {
		for _, v := range r.Protect() {
			protect[v] = true
		}
	}
	excess := len(ms) - r.Keep
	var del []string
	for _, m := range ms {
		if excess <= 0 {
			break
		}
		if protect[m.Version] {
			continue
		}
		del = append(del, m.Version)
		excess--
	}
	return del, len(ms), nil
}

// Skip skips when nothing exceeds Keep.
func (r *Retention) Skip(ctx context.Context) (bool, string) {
	del, n, err := r.candidates(ctx)
	if err != nil {
		return false, "" // Run reports it
	}
	if len(del) == 0 {
		return true, fmt.Sprintf("%d releases in the bucket, keeping up to %d", n, r.Keep)
	}
	return false, ""
}

// Run deletes. A failure is only a warning: housekeeping never stops a release (it runs
// before the switch, so that nothing but the switch runs around it), and the next release
// prunes again.
func (r *Retention) Run(ctx context.Context) error {
	if err := r.prune(ctx); err != nil && r.Out != nil {
		fmt.Fprintf(r.Out, "  ! retention failed (the release goes on; the next one prunes again): %v\n", err)
	}
	return nil
}

func (r *Retention) prune(ctx context.Context) error {
	del, _, err := r.candidates(ctx)
	if err != nil {
		return err
	}
	for _, v := range del {
		keys, err := r.Store.List(ctx, "releases/"+v+"/")
		if err != nil {
			return err
		}
		sort.Slice(keys, func(i, j int) bool {
			return !strings.HasSuffix(keys[i], "/manifest.json") && strings.HasSuffix(keys[j], "/manifest.json")
		})
		for _, k := range keys {
			if err := r.Store.Delete(ctx, k, onbox.Cond{}); err != nil {
				return err
			}
		}
		r.Removed = append(r.Removed, v)
		if r.Out != nil {
			fmt.Fprintf(r.Out, "  deleted release %s\n", v)
		}
	}
	return nil
}
