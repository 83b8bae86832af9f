// Package opts reads the ZOPS_* options of a mage target from the environment, typed, in one
// way for every target: each capability's entry file (internal/<cap>/targets.go) reads its
// options with a Reader and passes typed options to its library, which never reads the
// environment itself. Every bad value is collected, named with the variable and the fix, and
// reported at once by Err, so a user fixes them all in one go. Booleans have one dialect:
// 1/true/yes/on and 0/false/no/off (any case); anything else is an error, never silently
// false. An empty variable counts as unset.
package opts

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is wrapped by Err when at least one option was bad.
var ErrInvalid = errors.New("invalid options")

// Reader reads options and collects their problems.
type Reader struct {
	lookup   func(string) (string, bool)
	problems []string
}

// New reads the process environment.
func New() *Reader { return &Reader{lookup: os.LookupEnv} }

// FromMap reads m instead of the environment (tests).
func FromMap(m map[string]string) *Reader {
	return &Reader{lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

func (r *Reader) get(name string) (string, bool) {
	v, ok := r.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// Problem records a problem with name's value; fix says what to write instead.
func (r *Reader) Problem(name, value, fix string) {
	r.problems = append(r.problems, fmt.Sprintf("%s=%q: %s", name, value, fix))
}

// Set reports whether name has a non-empty value.
func (r *Reader) Set(name string) bool { _, ok := r.get(name); return ok }

// String returns name's value, or def when unset.
func (r *Reader) String(name, def string) string {
	if v, ok := r.get(name); ok {
		return v
	}
	return def
}

// Int returns name's value as an integer, or def when unset or bad.
func (r *Reader) Int(name string, def int) int {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.Problem(name, v, "want a whole number, e.g. 4")
		return def
	}
	return n
}

// PositiveInt is Int for values that must be at least 1.
func (r *Reader) PositiveInt(name string, def int) int {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		r.Problem(name, v, "want a positive whole number, e.g. 4")
		return def
	}
	return n
}

// Float returns name's value as a number, or def when unset or bad.
func (r *Reader) Float(name string, def float64) float64 {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		r.Problem(name, v, "want a number, e.g. 0.5")
		return def
	}
	return f
}

// Bool returns name's value as a boolean, or def when unset or bad.
func (r *Reader) Bool(name string, def bool) bool {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	r.Problem(name, v, "want 1/true/yes/on or 0/false/no/off")
	return def
}

// Duration returns name's value as a duration, or def when unset or bad. A bare "0" is zero.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.Problem(name, v, "want a duration such as 90s, 5m or 2h")
		return def
	}
	return d
}

// List returns name's value split on commas and white space, nil when unset.
func (r *Reader) List(name string) []string {
	v, ok := r.get(name)
	if !ok {
		return nil
	}
	return strings.FieldsFunc(v, func(c rune) bool { return c == ',' || c == ' ' || c == '\t' || c == '\n' })
}

// Err returns every problem found so far (wrapping ErrInvalid), or nil.
func (r *Reader) Err() error {
	if len(r.problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  - %s", ErrInvalid, strings.Join(r.problems, "\n  - "))
}
