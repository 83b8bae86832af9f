package opts

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReader(t *testing.T) {
	t.Parallel()
	r := FromMap(map[string]string{
		"S": "text", "I": "42", "P": "3", "F": "0.25", "D": "90s", "L": "a, b c",
		"T1": "1", "T2": "TRUE", "T3": "yes", "T4": "on", "F1": "0", "F2": "false", "F3": "No", "F4": "off", "E": "",
	})
	if r.String("S", "d") != "text" || r.String("E", "d") != "d" || r.String("X", "d") != "d" {
		t.Error("String")
	}
	if r.Int("I", 0) != 42 || r.Int("X", 7) != 7 || r.PositiveInt("P", 1) != 3 || r.Float("F", 0) != 0.25 {
		t.Error("numbers")
	}
	if r.Duration("D", 0) != 90*time.Second || r.Duration("X", time.Minute) != time.Minute {
		t.Error("Duration")
	}
	if !slices.Equal(r.List("L"), []string{"a", "b", "c"}) || r.List("X") != nil {
		t.Errorf("List %q", r.List("L"))
	}
	for _, k := range []string{"T1", "T2", "T3", "T4"} {
		if !r.Bool(k, false) {
			t.Errorf("%s is not true", k)
		}
	}
	for _, k := range []string{"F1", "F2", "F3", "F4"} {
		if r.Bool(k, true) {
			t.Errorf("%s is not false", k)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestReaderCollectsEveryProblem(t *testing.T) {
	t.Parallel()
	r := FromMap(map[string]string{"ZOPS_A": "notanumber", "ZOPS_B": "maybe", "ZOPS_C": "soon", "ZOPS_D": "0", "ZOPS_E": "x"})
	if r.Int("ZOPS_A", 5) != 5 || r.Bool("ZOPS_B", true) != true || r.Duration("ZOPS_C", time.Second) != time.Second ||
		r.PositiveInt("ZOPS_D", 2) != 2 || r.Float("ZOPS_E", 1) != 1 {
		t.Error("a bad value must leave the default")
	}
	err := r.Err()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Err = %v", err)
	}
	for _, want := range []string{`ZOPS_A="notanumber": want a whole number`, `ZOPS_B="maybe": want 1/true/yes/on or 0/false/no/off`,
		`ZOPS_C="soon": want a duration`, `ZOPS_D="0": want a positive`, `ZOPS_E="x": want a number`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
