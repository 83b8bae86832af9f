package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/onbox"
)

func TestRecord(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		runErr error
		want   string
	}{
		{"released", nil, ResultReleased},
		{"rolled back", fmt.Errorf("deploy: %w to v0: boom\nlog lines", onbox.ErrHealthGate), ResultRolledBack},
		{"failed", errors.New("upload: no bucket"), ResultFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := onbox.NewMemStore("rel")
			clock := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
			r := &Record{Store: st, Entry: Entry{Version: "v1", Who: "me@host", Kind: "release", Message: "m"},
				Outcome: func() onbox.Outcome { return onbox.Outcome{Previous: "v0"} },
				now:     func() time.Time { clock = clock.Add(time.Second); return clock }}
			if !strings.Contains(r.String(), "s3://rel/history/") {
				t.Errorf("String() = %q", r.String())
			}
			must(t, r.Run(ctx))
			must(t, r.Finish(ctx, tc.runErr))
			h, err := History(ctx, st)
			must(t, err)
			if len(h) != 1 {
				t.Fatalf("history %+v", h)
			}
			e := h[0]
			if e.Result != tc.want || e.Previous != "v0" || e.Who != "me@host" || e.Duration != time.Second || strings.Contains(e.Error, "\n") {
				t.Fatalf("entry %+v", e)
			}
		})
	}
}

func entry(v, result string, at int) Entry {
	return Entry{Version: v, Result: result, Kind: "release", Started: time.Date(2026, 11, 27, 10, at, 0, 0, time.UTC)}
}

func TestServing(t *testing.T) {
	tests := []struct {
		name          string
		h             []Entry
		cur, rollback string
	}{
		{"empty", nil, "", ""},
		{"one", []Entry{entry("v1", ResultReleased, 1)}, "v1", ""},
		{"failed ones do not count", []Entry{entry("v1", ResultReleased, 1), entry("v2", ResultRolledBack, 2), entry("v3", ResultReleased, 3), entry("v4", ResultFailed, 4)}, "v3", "v1"},
		{"a rollback makes the old version current", []Entry{entry("v1", ResultReleased, 1), entry("v2", ResultReleased, 2), entry("v1", ResultReleased, 3)}, "v1", "v2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur, prev := Serving(tc.h)
			if cur != tc.cur || prev != tc.rollback {
				t.Fatalf("Serving = %q, %q; want %q, %q", cur, prev, tc.cur, tc.rollback)
			}
		})
	}
	var b bytes.Buffer
	PrintHistory(&b, []Entry{entry("v1", ResultReleased, 1), entry("v2", ResultRolledBack, 2)})
	if !strings.Contains(b.String(), "rolled-back") || !strings.Contains(b.String(), "serving: v1; rollback target: (none)") {
		t.Fatalf("table:\n%s", b.String())
	}
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	st := onbox.NewMemStore("rel")
	for i, v := range []string{"v1", "v2", "v3", "v4", "v5"} {
		m := packaged(t, v)
		m.BuiltAt = time.Date(2026, 11, 27, 10, i, 0, 0, time.UTC)
		must(t, (&Upload{Store: st, Manifest: func() *onbox.Manifest { return m }}).Run(ctx))
	}
	// History: v1 serves (a rollback), v2 is the rollback target; the pointer names v5.
	for i, v := range []string{"v2", "v1"} {
		r := &Record{Store: st, Entry: Entry{Version: v}, now: func() time.Time { return time.Date(2026, 11, 27, 11, i, 0, 0, time.UTC) }}
		must(t, r.Run(ctx))
		must(t, r.Finish(ctx, nil))
	}
	r := &Retention{Store: st, Keep: 3, Protect: func() []string { return nil }}
	if !strings.Contains(r.String(), "keep the last 3") {
		t.Errorf("String() = %q", r.String())
	}
	if skip, why := r.Skip(ctx); skip {
		t.Fatalf("5 releases, keep 3, but skipped: %s", why)
	}
	must(t, r.Run(ctx))
	if strings.Join(r.Removed, ",") != "v3,v4" {
		t.Fatalf("removed %v, want v3,v4 (v1 serves, v2 is the rollback target, v5 is the pointer)", r.Removed)
	}
	ms, _ := Versions(ctx, st)
	var left []string
	for _, m := range ms {
		left = append(left, m.Version)
	}
	if strings.Join(left, ",") != "v1,v2,v5" {
		t.Fatalf("left %v", left)
	}
	if keys, _ := st.List(ctx, "releases/v3/"); len(keys) != 0 {
		t.Fatalf("v3 objects left: %v", keys)
	}
	if skip, why := r.Skip(ctx); !skip || !strings.Contains(why, "3 releases in the bucket, keeping up to 3") {
		t.Fatalf("second run: skip=%v %q", skip, why)
	}
}

// Finding 10 (issue 14): Serving took a rollback entry for a release, so after v1 -> v2 ->
// rollback (to v1) the rollback target was v2 again: a second rollback returned to the bad
// version. A version rolled away from is never a target, until it is released again.
func TestSecondRollbackNeverReturnsToTheBadVersion(t *testing.T) {
	rb := func(to, from string, at int) Entry {
		e := entry(to, ResultReleased, at)
		e.Kind, e.Previous = KindRollback, from
		return e
	}
	tests := []struct {
		name          string
		h             []Entry
		cur, rollback string
	}{
		{"v1, v2, rollback: nothing left to roll back to", []Entry{entry("v1", ResultReleased, 1), entry("v2", ResultReleased, 2), rb("v1", "v2", 3)}, "v1", ""},
		{"v0, v1, v2, rollback: the next target is v0", []Entry{entry("v0", ResultReleased, 1), entry("v1", ResultReleased, 2), entry("v2", ResultReleased, 3), rb("v1", "v2", 4)}, "v1", "v0"},
		{"v0, v1, v2, rollback, rollback: v0 serves, never v2", []Entry{entry("v0", ResultReleased, 1), entry("v1", ResultReleased, 2), entry("v2", ResultReleased, 3), rb("v1", "v2", 4), rb("v0", "v1", 5)}, "v0", ""},
		{"a failed rollback changes nothing", []Entry{entry("v0", ResultReleased, 1), entry("v1", ResultReleased, 2), func() Entry { e := rb("v0", "v1", 3); e.Result = ResultFailed; return e }()}, "v1", "v0"},
		{"v2 released again after its rollback is trusted again", []Entry{entry("v1", ResultReleased, 1), entry("v2", ResultReleased, 2), rb("v1", "v2", 3), entry("v2", ResultReleased, 4)}, "v2", "v1"},
		{"rollback to a named older version", []Entry{entry("v0", ResultReleased, 1), entry("v1", ResultReleased, 2), entry("v2", ResultReleased, 3), rb("v0", "v2", 4)}, "v0", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur, prev := Serving(tc.h)
			if cur != tc.cur || prev != tc.rollback {
				t.Fatalf("Serving = %q, %q; want %q, %q", cur, prev, tc.cur, tc.rollback)
			}
			if prev == "v2" && cur != "v2" {
				t.Fatalf("rollback target is the bad version v2")
			}
		})
	}
}
