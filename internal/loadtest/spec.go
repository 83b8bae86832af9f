package loadtest

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// RunSpec is a self-contained, serialisable description of one runner's share of a run: what
// the prod orchestrator uploads for a regional runner (zops-loadgen run -spec). It holds no
// secret: the token is read by the runner from an SSM SecureString parameter.
type RunSpec struct {
	Scenario       string        `json:"scenario"`
	Target         string        `json:"target"`
	Region         string        `json:"region"`
	Stages         []Stage       `json:"stages"`
	Mix            MixSpec       `json:"mix"`
	HotRatio       float64       `json:"hot_ratio"` // < 0: the mix's own
	RegionHeader   bool          `json:"region_header"`
	TokenParameter string        `json:"token_parameter,omitempty"`
	Window         time.Duration `json:"window"`
	MaxWorkers     int           `json:"max_workers"`
	// StartAt aligns the runners of all regions on one start time (zero: start at once).
	StartAt time.Time `json:"start_at"`
	// RegionIndex and RegionCount place this runner among the run's regions (the mix's
	// shield relay keys line up across runners); RegionCount 0: a run of this region alone.
	RegionIndex int `json:"region_index,omitempty"`
	RegionCount int `json:"region_count,omitempty"`
	// Salt is the run's MixOptions.Salt, the same for every runner.
	Salt uint64 `json:"salt,omitempty"`
}

// Plan builds the engine plan of the spec with the given token ("" leaves private calls out).
func (s RunSpec) Plan(token string) (Plan, *Mix, error) {
	mix, err := NewMix(s.Mix, MixOptions{Target: s.Target, Regions: []string{s.Region}, RegionHeader: s.RegionHeader, Token: token, HotRatio: s.HotRatio,
		RegionIndex: s.RegionIndex, RegionCount: s.RegionCount, Salt: s.Salt})
	if err != nil {
		return Plan{}, nil, err
	}
	return Plan{Name: s.Scenario, Target: s.Target, Regions: []string{s.Region}, Stages: s.Stages, Source: mix,
		Window: s.Window, MaxWorkers: s.MaxWorkers}, mix, nil
}

// ReadRunSpec reads a spec file.
func ReadRunSpec(path string) (RunSpec, error) {
	var s RunSpec
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("read run spec: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("run spec %s: %w", path, err)
	}
	return s, nil
}

// MergeResults combines the results of regional runners into one result: phases are matched
// by position, histograms merged exactly, regions concatenated.
func MergeResults(rs []*Result) (*Result, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("merge results: none")
	}
	out := &Result{Name: rs[0].Name, Target: rs[0].Target, Started: rs[0].Started}
	for _, r := range rs {
		if len(r.Phases) != len(rs[0].Phases) {
			return nil, fmt.Errorf("merge results: %s has %d phases, %s has %d", r.Regions, len(r.Phases), rs[0].Regions, len(rs[0].Phases))
		}
		out.Regions = append(out.Regions, r.Regions...)
		if r.Started.Before(out.Started) {
			out.Started = r.Started
		}
		if r.Duration > out.Duration {
			out.Duration = r.Duration
		}
	}
	for i := range rs[0].Phases {
		p := rs[0].Phases[i]
		p.Series, p.Errors, p.Scheduled, p.Dropped, p.Cancelled = nil, nil, 0, 0, 0
		errs := map[string]uint64{}
		for _, r := range rs {
			q := r.Phases[i]
			p.Scheduled += q.Scheduled
			p.Dropped += q.Dropped
			p.Cancelled += q.Cancelled
			p.Series = append(p.Series, q.Series...)
			for _, e := range q.Errors {
				errs[e.Kind] += e.Count
			}
		}
		for k, v := range errs {
			p.Errors = append(p.Errors, ErrorCount{Kind: k, Count: v})
		}
		out.Phases = append(out.Phases, p)
	}
	return out, nil
}
