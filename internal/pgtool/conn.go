// Package pgtool wraps the PostgreSQL client programs (pg_dump, pg_restore, psql) with typed
// options, progress reporting and typed errors. It also finds a program of a wanted major
// version (FindProgram) and runs PostgreSQL's server programs as the postgres user
// (ServerUser, ChownTree).
//
// Credentials never appear on a command line: a connection URL is split into PG* environment
// variables for the child process, and the password goes into a private pgpass file (mode 0600)
// that is removed when the command ends. Everything printed uses Conn.Redacted.
package pgtool

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ErrBadURL reports a connection URL that cannot be used.
var ErrBadURL = errors.New("bad PostgreSQL URL")

// Conn is one PostgreSQL connection target, parsed from a postgres:// URL.
type Conn struct {
	Host     string
	Port     string
	User     string
	Password string
	Database string
	// Params holds the remaining query parameters (sslmode, sslrootcert, application_name, ...).
	Params map[string]string
}

// pgParamEnv maps libpq URL parameters to the environment variables libpq reads.
var pgParamEnv = map[string]string{
	"sslmode":              "PGSSLMODE",
	"sslrootcert":          "PGSSLROOTCERT",
	"sslcert":              "PGSSLCERT",
	"sslkey":               "PGSSLKEY",
	"sslcrl":               "PGSSLCRL",
	"sslnegotiation":       "PGSSLNEGOTIATION",
	"application_name":     "PGAPPNAME",
	"connect_timeout":      "PGCONNECT_TIMEOUT",
	"options":              "PGOPTIONS",
	"target_session_attrs": "PGTARGETSESSIONATTRS",
	"channel_binding":      "PGCHANNELBINDING",
	"gssencmode":           "PGGSSENCMODE",
}

// ParseURL parses a postgres:// or postgresql:// URL.
func ParseURL(raw string) (Conn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse echoes the input in its message; never show a password.
		return Conn{}, fmt.Errorf("%w: cannot parse (expected postgres://user:password@host:port/db?sslmode=...)", ErrBadURL)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return Conn{}, fmt.Errorf("%w: scheme %q, expected postgres://", ErrBadURL, u.Scheme)
	}
	c := Conn{Host: u.Hostname(), Port: u.Port(), Params: map[string]string{}}
	if u.User != nil {
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	c.Database = strings.TrimPrefix(u.Path, "/")
	for k, v := range u.Query() {
		if len(v) > 0 {
			c.Params[k] = v[len(v)-1]
		}
	}
	// As in libpq, host= and port= in the query override the authority: host= may name a
	// Unix socket directory (postgres://postgres@/zmanim?host=/run/postgresql, the box's own
	// connection) or a host name.
	if h, ok := c.Params["host"]; ok {
		if h != "" {
			c.Host = h
		}
		delete(c.Params, "host")
	}
	if p, ok := c.Params["port"]; ok {
		if p != "" {
			c.Port = p
		}
		delete(c.Params, "port")
	}
	if strings.Contains(c.Host, ",") {
		return Conn{}, fmt.Errorf("%w: %s: several hosts are not supported", ErrBadURL, c.Redacted())
	}
	if c.Port == "" {
		c.Port = "5432"
	}
	if c.Database == "" {
		return Conn{}, fmt.Errorf("%w: %s names no database (add /dbname)", ErrBadURL, c.Redacted())
	}
	for k := range c.Params {
		if _, ok := pgParamEnv[k]; !ok && k != "pool_max_conns" {
			return Conn{}, fmt.Errorf("%w: %s: unsupported parameter %q", ErrBadURL, c.Redacted(), k)
		}
	}
	return c, nil
}

// MustParse is ParseURL for literals in tests and examples; it panics on error.
func MustParse(raw string) Conn {
	c, err := ParseURL(raw)
	if err != nil {
		panic(err)
	}
	return c
}

// IsSocket reports whether Host is a Unix socket directory rather than a host name.
func (c Conn) IsSocket() bool { return strings.HasPrefix(c.Host, "/") }

// authority is the URL's host part; a socket directory goes into the query instead (host=),
// which libpq and pgx read the same way.
func (c Conn) authority() (string, url.Values) {
	q := url.Values{}
	if c.IsSocket() {
		q.Set("host", c.Host)
		if c.Port != "" && c.Port != "5432" {
			q.Set("port", c.Port)
		}
		return "", q
	}
	return hostPort(c.Host, c.Port), q
}

// URL renders the connection as a URL, including the password: for drivers, never for output.
func (c Conn) URL() string {
	host, q := c.authority()
	u := url.URL{Scheme: "postgres", Host: host, Path: "/" + c.Database}
	if c.User != "" {
		if c.Password != "" {
			u.User = url.UserPassword(c.User, c.Password)
		} else {
			u.User = url.User(c.User)
		}
	}
	for k, v := range c.Params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Redacted renders the connection for logs: the password is never shown.
func (c Conn) Redacted() string {
	host, q := c.authority()
	u := url.URL{Scheme: "postgres", Host: host, Path: "/" + c.Database, RawQuery: q.Encode()}
	if c.User != "" {
		if c.Password != "" {
			u.User = url.UserPassword(c.User, "xxxxx")
		} else {
			u.User = url.User(c.User)
		}
	}
	return u.String()
}

// WithDatabase returns a copy of c pointing at another database on the same server.
func (c Conn) WithDatabase(db string) Conn {
	d := c
	d.Database = db
	d.Params = make(map[string]string, len(c.Params))
	for k, v := range c.Params {
		d.Params[k] = v
	}
	return d
}

func hostPort(h, p string) string {
	if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
		h = "[" + h + "]"
	}
	if p == "" {
		return h
	}
	return h + ":" + p
}

// Env is the environment a client program needs for this connection, plus a cleanup function.
// The password is written to a private pgpass file in dir (or the system temp dir) and referenced
// through PGPASSFILE, so it shows neither in `ps` nor in /proc/<pid>/environ of the child.
// Inherited variables that could send the program elsewhere (PGHOST, PGSERVICE, ...) are
// removed; a PGPASSWORD inherited from the caller is moved into the pgpass file as well, and
// without any password the caller's ~/.pgpass (or PGPASSFILE) is left to libpq.
func (c Conn) Env(dir string) (env []string, cleanup func(), err error) {
	cleanup = func() {}
	password := c.Password
	if password == "" {
		password = os.Getenv("PGPASSWORD")
	}
	set := map[string]string{"PGHOST": c.Host, "PGPORT": c.Port, "PGDATABASE": c.Database}
	if c.User != "" {
		set["PGUSER"] = c.User
	}
	for k, v := range c.Params {
		if name, ok := pgParamEnv[k]; ok {
			set[name] = v
		}
	}
	drop := map[string]bool{"PGPASSWORD": true, "PGHOSTADDR": true, "PGSERVICE": true, "PGSERVICEFILE": true,
		"PGUSER": true, "PGHOST": true, "PGPORT": true, "PGDATABASE": true}
	if password != "" {
		drop["PGPASSFILE"] = true
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, ours := set[name]; ours || drop[name] {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	if password == "" {
		return env, cleanup, nil
	}
	f, err := os.CreateTemp(dir, "zops-pgpass-*")
	if err != nil {
		return nil, cleanup, fmt.Errorf("create pgpass file: %w", err)
	}
	name := f.Name()
	cleanup = func() { _ = os.Remove(name) }
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		cleanup()
		return nil, func() {}, fmt.Errorf("chmod pgpass file: %w", err)
	}
	user := c.User
	if user == "" {
		user = "*"
	}
	line := strings.Join([]string{pgpassEscape(c.Host), pgpassEscape(c.Port), "*", pgpassEscape(user), pgpassEscape(password)}, ":") + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		cleanup()
		return nil, func() {}, fmt.Errorf("write pgpass file: %w", err)
	}
	if err := f.Close(); err != nil {
		cleanup()
		return nil, func() {}, fmt.Errorf("write pgpass file: %w", err)
	}
	abs, _ := filepath.Abs(name)
	env = append(env, "PGPASSFILE="+abs)
	return env, cleanup, nil
}

// pgpassEscape escapes ':' and '\' as the pgpass format requires.
func pgpassEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return strings.ReplaceAll(s, ":", `\:`)
}
