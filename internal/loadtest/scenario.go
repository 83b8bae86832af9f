package loadtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// DefaultScenariosFile is the scenario file, relative to the repository root.
const DefaultScenariosFile = "loadtest/scenarios.json"

// ErrUnknownScenario is returned for a scenario name the file does not define.
var ErrUnknownScenario = errors.New("unknown scenario")

// ScenarioFile is the content of loadtest/scenarios.json.
type ScenarioFile struct {
	Mix       MixSpec                 `json:"mix"`
	Scenarios map[string]ScenarioSpec `json:"scenarios"`
}

// ScenarioSpec is one named scenario. Stage rates are multiples of the expected load from
// config (x, from_x/to_x) or absolute (rate); thresholds are added to loadtest/thresholds.txt.
type ScenarioSpec struct {
	Description string      `json:"description"`
	Stages      []StageSpec `json:"stages"`
	Thresholds  []string    `json:"thresholds"`
	// HotRatio overrides the mix's hot ratio for this scenario.
	HotRatio *float64 `json:"hot_ratio,omitempty"`
	// Window is the time-window width of the report's time series.
	Window string `json:"window,omitempty"`
	// ReplaceThresholds judges the scenario by its own thresholds only, not by
	// loadtest/thresholds.txt (smoke: does everything answer, not how fast with cold caches).
	ReplaceThresholds bool `json:"replace_thresholds,omitempty"`
	// Evaluate names the stages thresholds are judged on (default: all), e.g. leaving out a
	// warm-up whose cold caches are expected.
	Evaluate []string `json:"evaluate,omitempty"`
	// MinSamples is the fewest requests a region and class may have for a threshold on it
	// to be judged; fewer fail as "not enough samples" (0: no minimum).
	MinSamples int `json:"min_samples,omitempty"`
}

// StageSpec is one stage as written in the file.
type StageSpec struct {
	Name     string   `json:"name"`
	Duration string   `json:"duration"`
	Rate     *float64 `json:"rate,omitempty"`
	X        *float64 `json:"x,omitempty"`
	FromX    *float64 `json:"from_x,omitempty"`
	ToX      *float64 `json:"to_x,omitempty"`
	// Target sets the rate to the configured target load: expected load x multiplier
	// (config load.expected_rps x load.multiplier, 50 x 10 by default).
	Target bool `json:"target,omitempty"`
	// Main marks the stage whose duration ZOPS_LOADTEST_DURATION replaces.
	Main bool `json:"main,omitempty"`
}

// Load is the expected load and the multiplier the target load is made of.
type Load struct {
	ExpectedRPS float64
	Multiplier  float64
}

// LoadScenarioFile reads and validates the scenario file.
func LoadScenarioFile(path string) (*ScenarioFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenarios: %w", err)
	}
	var f ScenarioFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("scenarios %s: decode: %w", path, err)
	}
	var errs []error
	for _, name := range f.Names() {
		stages, err := f.Stages(name, Load{50, 10}, 0)
		if err != nil {
			errs = append(errs, err)
		}
		for _, ev := range f.Scenarios[name].Evaluate {
			found := false
			for _, st := range stages {
				found = found || st.Name == ev
			}
			if !found {
				errs = append(errs, fmt.Errorf("scenario %q: evaluate names stage %q, which it does not have", name, ev))
			}
		}
		if w := f.Scenarios[name].Window; w != "" {
			if d, err := time.ParseDuration(w); err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("scenario %q: window %q: want a positive duration", name, w))
			}
		}
		if _, err := ParseThresholds(strings.Join(f.Scenarios[name].Thresholds, "\n")); err != nil {
			errs = append(errs, fmt.Errorf("scenario %q thresholds: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("scenarios %s: %w", path, err)
	}
	return &f, nil
}

// Names lists the scenarios, sorted.
func (f *ScenarioFile) Names() []string {
	var n []string
	for k := range f.Scenarios {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Scenario returns a scenario by name.
func (f *ScenarioFile) Scenario(name string) (ScenarioSpec, error) {
	s, ok := f.Scenarios[name]
	if !ok {
		return ScenarioSpec{}, fmt.Errorf("%w %q: choose one of %s with ZOPS_LOADTEST_SCENARIO", ErrUnknownScenario, name, strings.Join(f.Names(), ", "))
	}
	return s, nil
}

// Stages resolves a scenario's stages against the expected load (requests per second).
// A positive duration replaces the main stage's duration.
func (f *ScenarioFile) Stages(name string, load Load, duration time.Duration) ([]Stage, error) {
	expectedRPS := load.ExpectedRPS
	s, err := f.Scenario(name)
	if err != nil {
		return nil, err
	}
	var out []Stage
	var errs []error
	for i, st := range s.Stages {
		where := fmt.Sprintf("scenario %q stage %d (%s)", name, i+1, st.Name)
		d, err := time.ParseDuration(st.Duration)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: duration %q: want a positive Go duration such as 60s or 5m", where, st.Duration))
		}
		if st.Main && duration > 0 {
			d = duration
		}
		var from, to float64
		set := 0
		if st.Rate != nil {
			from, to = *st.Rate, *st.Rate
			set++
		}
		if st.X != nil {
			from, to = *st.X*expectedRPS, *st.X*expectedRPS
			set++
		}
		if st.Target {
			from, to = expectedRPS*load.Multiplier, expectedRPS*load.Multiplier
			set++
		}
		if st.FromX != nil || st.ToX != nil {
			if st.FromX == nil || st.ToX == nil {
				errs = append(errs, fmt.Errorf("%s: from_x and to_x go together", where))
			} else {
				from, to = *st.FromX*expectedRPS, *st.ToX*expectedRPS
			}
			set++
		}
		if set != 1 {
			errs = append(errs, fmt.Errorf("%s: give exactly one of rate, x, target or from_x/to_x", where))
		}
		if from < 0 || to < 0 {
			errs = append(errs, fmt.Errorf("%s: rates must not be negative", where))
		}
		out = append(out, Stage{Name: st.Name, Duration: d, StartRate: from, EndRate: to})
	}
	if len(out) == 0 {
		errs = append(errs, fmt.Errorf("scenario %q: no stages", name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
