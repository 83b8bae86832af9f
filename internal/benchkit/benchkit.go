// Package benchkit holds what every `bench:<name>` target shares: the median of repeated
// measurements, interleaved runs of the toolkit and its baseline, and the result line.
//
// The result line is the benchmark's last line, `name: key=value key=value ...`, with the keys
// in the order the benchmark gives them (the same on every run), so that anyone can rerun a
// benchmark and compare lines, or parse them with Parse.
package benchkit

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Median returns the median of v: the middle value of the sorted samples for an odd count,
// and the mean of the two middle values for an even count (so two runs give their mean, not
// whichever happened to be slower). It returns 0 for no samples and does not modify v.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Side is one contender of a benchmark: the toolkit or its baseline.
type Side struct {
	Name string
	// Run performs one timed run (round counts from 0) and returns its measurement
	// (seconds, requests per second, ...).
	Run func(ctx context.Context, round int) (float64, error)
}

// Interleave runs every side once per round, in the given order, for rounds rounds, and
// returns the samples of each side (samples[i] belongs to sides[i]). Alternating instead of
// running one side's rounds and then the other's makes slow drift on a shared machine (other
// jobs, a warming cache, thermal throttling) fall on both sides alike. progress, when not nil,
// is called after each run.
func Interleave(ctx context.Context, rounds int, sides []Side, progress func(round int, side string, v float64)) ([][]float64, error) {
	samples := make([][]float64, len(sides))
	for r := 0; r < rounds; r++ {
		for i, s := range sides {
			if err := ctx.Err(); err != nil {
				return samples, err
			}
			v, err := s.Run(ctx, r)
			if err != nil {
				return samples, fmt.Errorf("run %d, %s: %w", r+1, s.Name, err)
			}
			samples[i] = append(samples[i], v)
			if progress != nil {
				progress(r, s.Name, v)
			}
		}
	}
	return samples, nil
}

// Field is one key=value of a result line.
type Field struct {
	Key, Value string
}

// Int is an integer field.
func Int[T ~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64](key string, v T) Field {
	return Field{key, fmt.Sprint(v)}
}

// Float is a field with prec digits after the decimal point.
func Float(key string, v float64, prec int) Field {
	return Field{key, strconv.FormatFloat(v, 'f', prec, 64)}
}

var keyRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Line returns the result line `name: key=value ...` with the fields in the given order.
// Names and keys are lower-case words with underscores and values carry no spaces: a
// benchmark that breaks that is a programming error, so Line panics.
func Line(name string, fields ...Field) string {
	if !keyRE.MatchString(name) {
		panic(fmt.Sprintf("benchkit: bad benchmark name %q", name))
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(":")
	seen := map[string]bool{}
	for _, f := range fields {
		if !keyRE.MatchString(f.Key) || seen[f.Key] {
			panic(fmt.Sprintf("benchkit: bad or repeated key %q in the %s line", f.Key, name))
		}
		if f.Value == "" || strings.ContainsAny(f.Value, " \t\n=") {
			panic(fmt.Sprintf("benchkit: bad value %q for %s in the %s line", f.Value, f.Key, name))
		}
		seen[f.Key] = true
		b.WriteString(" ")
		b.WriteString(f.Key)
		b.WriteString("=")
		b.WriteString(f.Value)
	}
	return b.String()
}

// Parse splits a result line into its name and fields, in order.
func Parse(line string) (name string, fields []Field, err error) {
	name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
	if !ok || !keyRE.MatchString(name) {
		return "", nil, fmt.Errorf("not a benchmark line (want `name: key=value ...`): %q", line)
	}
	for _, kv := range strings.Fields(rest) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !keyRE.MatchString(k) || v == "" {
			return "", nil, fmt.Errorf("benchmark line %q: bad field %q", line, kv)
		}
		fields = append(fields, Field{k, v})
	}
	return name, fields, nil
}

// Quantile returns the q-quantile (0..1) of v by linear interpolation between the closest
// ranks (the same rule as Median for q = 0.5); 0 for no samples. v is not modified.
func Quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// SpreadPct is the interquartile range of v as a percentage of its median: how far apart the
// middle half of repeated measurements lie. It is the figure to quote beside a median from a
// shared machine (the full range grows with every outlier round; the IQR does not).
func SpreadPct(v []float64) float64 {
	m := Median(v)
	if m == 0 {
		return 0
	}
	return (Quantile(v, 0.75) - Quantile(v, 0.25)) / m * 100
}
