package release

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/box"
	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/onbox"
	"github.com/shtetl/zmanim-ops/internal/s3lock"
)

// fakeDeployer returns a fixed outcome.
type fakeDeployer struct {
	err error
}

func (f *fakeDeployer) Where() string { return "a fake box" }
func (f *fakeDeployer) Deploy(_ context.Context, v string) (onbox.Outcome, error) {
	return onbox.Outcome{Version: v, Previous: "v1"}, f.err
}

// failingHistory fails every write under history/.
type failingHistory struct{ onbox.Store }

func (f failingHistory) Put(ctx context.Context, key string, body []byte, c onbox.Cond) (string, error) {
	if strings.HasPrefix(key, HistoryPrefix) {
		return "", errors.New("injected: history write failed")
	}
	return f.Store.Put(ctx, key, body, c)
}

// Finding 7 (issue 14): a failure after a successful switch (retention, the history write)
// moved releases/current back and recorded "failed" while the new version served; so did a
// failure to follow the SSM command. After the switch the box is the truth: the pointer and
// the history follow it and later steps only warn.
func TestAfterTheSwitchPointerAndHistoryFollowTheBox(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		deployErr   error
		later       error // a step after the deploy fails
		history     bool  // the history write fails
		wantPointer string
		wantResult  string
		wantErr     bool
	}{
		{"a later step fails after the switch", nil, errors.New("injected: later step failed"), false, "v2", ResultReleased, true},
		{"the history write fails after the switch", nil, nil, true, "v2", "", false},
		{"following the command failed: state unknown", ErrOutcomeUnknown, nil, false, "v2", ResultUnknown, true},
		{"health gate failed: rolled back", onbox.ErrHealthGate, nil, false, "v1", ResultRolledBack, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := onbox.NewMemStore("rel")
			var st onbox.Store = mem
			must(t, WritePointer(ctx, st, Pointer{Version: "v1"}))
			if tc.history {
				st = failingHistory{mem}
			}
			m := packaged(t, "v2")
			deploy := &Deploy{Deployer: &fakeDeployer{err: tc.deployErr}, Version: func() string { return "v2" }}
			rec := &Record{Store: st, Entry: Entry{Version: "v2", Kind: KindRelease}, Outcome: func() onbox.Outcome { return deploy.Outcome }, Box: deploy.State}
			steps := []Step{
				&Lock{Store: st, Lease: &s3lock.Mem{Name: "rel"}, Info: LockInfo{Owner: "me", Version: "v2"}, Timeout: time.Minute},
				rec,
				&Upload{Store: st, Manifest: func() *onbox.Manifest { return m }, Box: deploy.State},
				deploy,
				&fakeStep{name: "later", err: tc.later, ran: new([]string)},
				&Retention{Store: st, Keep: 5},
			}
			_, err := (&Pipeline{Name: "release v2", Steps: steps}).Run(ctx)
			if (err != nil) != tc.wantErr {
				t.Fatalf("pipeline err = %v, want error %v", err, tc.wantErr)
			}
			if p, _ := ReadPointer(ctx, mem); p.Version != tc.wantPointer {
				t.Fatalf("pointer %q, want %q", p.Version, tc.wantPointer)
			}
			h, err := History(ctx, mem)
			must(t, err)
			if tc.wantResult == "" {
				if len(h) != 0 {
					t.Fatalf("history %+v", h)
				}
				return
			}
			if len(h) != 1 || h[0].Result != tc.wantResult {
				t.Fatalf("history %+v, want one entry %s", h, tc.wantResult)
			}
			if tc.wantResult == ResultReleased && (h[0].Warning == "" || h[0].Error != "") {
				t.Fatalf("a later failure should be a warning: %+v", h[0])
			}
			if cur, _ := Serving(h); tc.wantResult == ResultReleased && cur != "v2" {
				t.Fatalf("history says %q serves", cur)
			}
		})
	}
}

// Finding 8 (issue 14): the SSM execution timeout (a fixed 180 s) was shorter than the agent's
// worst failure path with the production unit (download, start 60 s + stop 30 s, health gate,
// and the same again to roll back: about 213 s), so SSM could kill the agent mid-rollback. It
// is now derived from the unit the box runs and the health timeout, and covers that path.
func TestSSMTimeoutCoversTheWorstFailurePath(t *testing.T) {
	env, err := config.LoadWith(config.Options{Env: "prod", Root: config.RepoRoot()})
	must(t, err)
	u, err := box.ParseUnit(filepath.Join(config.RepoRoot(), "deploy", "systemd", boxspec.UnitAPI))
	must(t, err)
	health := env.Release.HealthTimeout.D()
	worst := onbox.DownloadBudget + 2*(u.TimeoutStartSec+u.TimeoutStopSec) + health
	got := ssmTimeout(Options{Env: env, Root: config.RepoRoot()})
	if got <= worst {
		t.Fatalf("SSM timeout %s does not cover the worst failure path %s (unit start %s stop %s, health %s)", got, worst, u.TimeoutStartSec, u.TimeoutStopSec, health)
	}
	// The fencing token travels with the command.
	d := &SSMDeployer{Bucket: "b"}
	d.SetFence(func() int64 { return 42 })
	if c := d.Command("v1"); !strings.Contains(c, "--fence 42") {
		t.Fatalf("command %q lacks the fencing token", c)
	}
}
