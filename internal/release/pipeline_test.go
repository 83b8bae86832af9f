package release

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

type fakeStep struct {
	name     string
	err      error
	skip     string
	finishes *[]string
	ran      *[]string
}

func (f *fakeStep) String() string { return f.name }
func (f *fakeStep) Run(ctx context.Context) error {
	*f.ran = append(*f.ran, f.name)
	return f.err
}

type finStep struct{ *fakeStep }

func (s finStep) Finish(ctx context.Context, err error) error {
	*s.finishes = append(*s.finishes, s.name)
	return nil
}

func TestPipeline(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name         string
		failAt       int // index of the failing step, -1 none
		dry          bool
		wantRan      string
		wantFinished string
		wantErr      string
	}{
		{"all pass", -1, false, "a,c,d,e", "d,b", ""},
		{"fails in the middle", 3, false, "a,c,d", "d,b", "d: boom"},
		{"fails first", 0, false, "a", "", "a: boom"},
		{"dry run", -1, true, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ran, fin []string
			mk := func(n string) *fakeStep { return &fakeStep{name: n, ran: &ran, finishes: &fin} }
			a, b, c, d, e := mk("a"), mk("b"), mk("c"), mk("d"), mk("e")
			b.skip = "not needed"
			steps := []Step{a, skipFin{b}, c, finStep{d}, e} // b skips; a skipped step that was passed still finishes
			if tc.failAt >= 0 {
				[]*fakeStep{a, b, c, d, e}[tc.failAt].err = boom
			}
			var out bytes.Buffer
			p := &Pipeline{Name: "test", Steps: steps, Out: &out, DryRun: tc.dry}
			sum, err := p.Run(context.Background())
			if got := strings.Join(ran, ","); got != tc.wantRan {
				t.Errorf("ran %q, want %q", got, tc.wantRan)
			}
			if got := strings.Join(fin, ","); got != tc.wantFinished {
				t.Errorf("finished %q, want %q (reverse order, reached steps only)", got, tc.wantFinished)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Errorf("err %v, want %q", err, tc.wantErr)
			}
			if tc.wantErr != "" && !errors.Is(err, boom) {
				t.Errorf("error %v does not wrap the step's error", err)
			}
			if tc.dry {
				if !strings.Contains(out.String(), "dry run") || !strings.Contains(out.String(), "2. b (would be skipped: not needed)") {
					t.Errorf("dry-run plan:\n%s", out.String())
				}
				return
			}
			if tc.failAt == 0 {
				return
			}
			if !strings.Contains(out.String(), "b — skipped: not needed") {
				t.Errorf("skip not logged:\n%s", out.String())
			}
			if len(sum.Steps) == 0 || sum.Steps[1].Skipped != "not needed" {
				t.Errorf("summary %+v", sum.Steps)
			}
			if tab := sum.Table(); !strings.Contains(tab, "total") || !strings.Contains(tab, "skipped  (not needed)") {
				t.Errorf("table:\n%s", tab)
			}
		})
	}
}

type skipFin struct{ *fakeStep }

func (s skipFin) Skip(ctx context.Context) (bool, string) { return s.skip != "", s.skip }
func (s skipFin) Finish(ctx context.Context, err error) error {
	*s.finishes = append(*s.finishes, s.name)
	return nil
}

func TestPipelineFinishersRunAfterCancel(t *testing.T) {
	var ran, fin []string
	ctx, cancel := context.WithCancel(context.Background())
	a := &fakeStep{name: "lock", ran: &ran, finishes: &fin}
	b := &fakeStep{name: "cancels", ran: &ran, finishes: &fin}
	steps := []Step{finStep{a}, cancelStep{b, cancel}, &fakeStep{name: "never", ran: &ran, finishes: &fin}}
	_, err := (&Pipeline{Name: "p", Steps: steps}).Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if strings.Join(ran, ",") != "lock,cancels" || strings.Join(fin, ",") != "lock" {
		t.Fatalf("ran %v finished %v", ran, fin)
	}
}

type cancelStep struct {
	*fakeStep
	cancel func()
}

func (c cancelStep) Run(ctx context.Context) error { c.fakeStep.Run(ctx); c.cancel(); return nil }
