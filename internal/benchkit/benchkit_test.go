package benchkit

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1}, 3},           // even: the mean of the two middle values
		{[]float64{9, 1, 5}, 5},        // odd: the middle one
		{[]float64{4, 1, 3, 100}, 3.5}, // even, unsorted, an outlier does not pull it
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.in...)
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !reflect.DeepEqual(in, tt.in) {
			t.Errorf("Median modified its input: %v", tt.in)
		}
	}
}

func TestInterleaveAlternatesSides(t *testing.T) {
	t.Parallel()
	var order []string
	side := func(name string, v float64) Side {
		return Side{Name: name, Run: func(_ context.Context, round int) (float64, error) {
			order = append(order, name)
			return v + float64(round), nil
		}}
	}
	got, err := Interleave(context.Background(), 3, []Side{side("ours", 1), side("base", 10)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "ours base ours base ours base"; strings.Join(order, " ") != want {
		t.Errorf("order %v, want %s", order, want)
	}
	if want := [][]float64{{1, 2, 3}, {10, 11, 12}}; !reflect.DeepEqual(got, want) {
		t.Errorf("samples %v, want %v", got, want)
	}
	boom := errors.New("boom")
	_, err = Interleave(context.Background(), 2, []Side{{Name: "bad", Run: func(context.Context, int) (float64, error) { return 0, boom }}}, nil)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "run 1, bad") {
		t.Errorf("error %v, want it wrapped with the run and side", err)
	}
}

func TestLineKeepsOrderAndParsesBack(t *testing.T) {
	t.Parallel()
	line := Line("verify", Int("rows", 1000), Float("ours_s", 1.23456, 3), Float("naive_s", 2, 3), Int("puts", uint64(7)))
	if want := "verify: rows=1000 ours_s=1.235 naive_s=2.000 puts=7"; line != want {
		t.Fatalf("Line = %q, want %q", line, want)
	}
	name, fields, err := Parse(line)
	if err != nil || name != "verify" || len(fields) != 4 || fields[1] != (Field{"ours_s", "1.235"}) {
		t.Fatalf("Parse = %q %v %v", name, fields, err)
	}
	for _, bad := range []string{"no colon", "x: a", "x: =1", "Bad: a=1"} {
		if _, _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
}

func TestLineRefusesBadKeys(t *testing.T) {
	t.Parallel()
	for _, f := range []Field{{"Rows", "1"}, {"a b", "1"}, {"a", "1 2"}, {"a", ""}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Line accepted %+v", f)
				}
			}()
			Line("x", f)
		}()
	}
	defer func() {
		if recover() == nil {
			t.Error("Line accepted a repeated key")
		}
	}()
	Line("x", Int("a", 1), Int("a", 2))
}

// TestOneMedianAndLine keeps Median and Line the only definitions: a package computing its own
// median, or a benchmark (bench*.go) formatting its own result line, would drift from the
// others again.
func TestOneMedianAndLine(t *testing.T) {
	t.Parallel()
	medianRE := regexp.MustCompile(`(?m)^func [mM]edian\(`)
	lineRE := regexp.MustCompile(`"[a-z]+: [a-z_]+=%`)
	for _, dir := range []string{"../../internal", "../../magefiles", "../../cmd"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.Contains(p, "/benchkit/") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if medianRE.Match(b) {
				t.Errorf("%s defines its own median: use benchkit.Median", p)
			}
			if m := lineRE.Find(b); m != nil && strings.HasPrefix(filepath.Base(p), "bench") {
				t.Errorf("%s formats a result line by hand (%s): use benchkit.Line", p, m)
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

func TestQuantileAndSpread(t *testing.T) {
	t.Parallel()
	v := []float64{10, 1, 4, 7, 100} // sorted: 1 4 7 10 100
	for _, tt := range []struct{ q, want float64 }{{0, 1}, {0.25, 4}, {0.5, 7}, {0.75, 10}, {1, 100}, {0.125, 2.5}} {
		if got := Quantile(v, tt.q); got != tt.want {
			t.Errorf("Quantile(%v, %v) = %v, want %v", v, tt.q, got, tt.want)
		}
	}
	if got := Quantile([]float64{5, 1}, 0.5); got != Median([]float64{5, 1}) {
		t.Errorf("Quantile(.5) = %v, want the median %v", got, Median([]float64{5, 1}))
	}
	if Quantile(nil, 0.5) != 0 || SpreadPct(nil) != 0 {
		t.Error("no samples: want 0")
	}
	// IQR 10-4 = 6 over median 7; the outlier 100 does not count.
	if got, want := SpreadPct(v), 6.0/7*100; got != want {
		t.Errorf("SpreadPct = %v, want %v", got, want)
	}
	if v[0] != 10 {
		t.Error("Quantile modified its input")
	}
}
