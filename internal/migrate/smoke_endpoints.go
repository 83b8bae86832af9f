package migrate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DefaultSmokeEndpoints is the endpoint list migrate:smoke reads by default.
const DefaultSmokeEndpoints = "migration/smoke-endpoints.txt"

// Endpoint is one call of the smoke list.
type Endpoint struct {
	Auth    string // "none", "user", "admin"
	Subject string
	Method  string
	Path    string
}

func (e Endpoint) String() string {
	a := e.Auth
	if e.Subject != "" {
		a += ":" + e.Subject
	}
	return fmt.Sprintf("%s %s [%s]", e.Method, e.Path, a)
}

// ParseEndpoints reads "AUTH METHOD PATH" lines; '#' starts a comment.
func ParseEndpoints(r io.Reader) ([]Endpoint, error) {
	var out []Endpoint
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want AUTH METHOD PATH, got %q", n, strings.TrimSpace(line))
		}
		e := Endpoint{Method: strings.ToUpper(f[1]), Path: f[2]}
		e.Auth, e.Subject, _ = strings.Cut(f[0], ":")
		switch e.Auth {
		case "none":
		case "user", "admin":
			if e.Subject == "" {
				return nil, fmt.Errorf("line %d: %s needs a subject, e.g. %s:user_alice", n, e.Auth, e.Auth)
			}
		default:
			return nil, fmt.Errorf("line %d: auth %q is not none, user:SUBJECT or admin:SUBJECT", n, f[0])
		}
		if !strings.HasPrefix(e.Path, "/") {
			return nil, fmt.Errorf("line %d: path %q must start with /", n, e.Path)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no endpoints listed")
	}
	return out, nil
}
