package checksum

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
)

// Sentinel errors for connection problems, so callers (and tests) can tell them apart.
var (
	ErrUnreachable = errors.New("database unreachable")
	ErrAuth        = errors.New("authentication failed")
	ErrNoDatabase  = errors.New("database does not exist")
)

// sessionParams pin every setting that changes how a value prints, so the same value hashes
// the same on both sides whatever the servers' defaults are.
var sessionParams = map[string]string{
	"TimeZone":                            "UTC",
	"DateStyle":                           "ISO, YMD",
	"IntervalStyle":                       "postgres",
	"extra_float_digits":                  "3", // shortest exact float output on PostgreSQL 12+
	"bytea_output":                        "hex",
	"lc_monetary":                         "C",
	"application_name":                    "zops-migrate-verify",
	"statement_timeout":                   "0",
	"idle_in_transaction_session_timeout": "0",
}

// side is one database under comparison: a fixed set of connections that all see the same
// snapshot (an exported snapshot shared by REPEATABLE READ transactions), handed out one at a
// time to workers.
type side struct {
	name     string // "source" or "target"
	redacted string
	conns    chan *pgx.Conn
	all      []*pgx.Conn
	major    int    // server major version
	snapshot string // exported snapshot id, "" when not shared
	postgis  string // schema of the postgis extension, "" when not installed
	// defaultColl describes the database's default collation, e.g. "libc:C", "icu:en-US".
	defaultColl string
}

func classify(which, redacted string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000":
			return fmt.Errorf("%w for %s %s: %s (check the user and password in the URL or ~/.pgpass)", ErrAuth, which, redacted, pgErr.Message)
		case "3D000":
			return fmt.Errorf("%w: %s %s: %s (create it or fix the database name in the URL)", ErrNoDatabase, which, redacted, pgErr.Message)
		}
		return fmt.Errorf("connect to %s %s: %w", which, redacted, err)
	}
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &opErr) || errors.As(err, &dnsErr) || errors.As(err, &netErr) ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such host") {
		return fmt.Errorf("%w: %s %s: %v (check host, port and firewall; is the server running?)", ErrUnreachable, which, redacted, err)
	}
	return fmt.Errorf("connect to %s %s: %w", which, redacted, err)
}

// openSide opens n connections to rawURL and puts them in one snapshot.
func openSide(ctx context.Context, which, rawURL string, n int, shareSnapshot bool) (*side, error) {
	pc, err := pgtool.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s URL: %w", which, err)
	}
	cfg, err := pgx.ParseConfig(pc.URL())
	if err != nil {
		return nil, fmt.Errorf("%s URL %s: %w", which, pc.Redacted(), pgtool.ErrBadURL)
	}
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	s := &side{name: which, redacted: pc.Redacted(), conns: make(chan *pgx.Conn, n)}
	fail := func(err error) (*side, error) {
		s.close()
		return nil, err
	}
	for i := 0; i < n; i++ {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return fail(classify(which, s.redacted, err))
		}
		s.all = append(s.all, c)
	}
	first := s.all[0]
	var num int
	if err := first.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return fail(fmt.Errorf("%s %s: read server version: %w", which, s.redacted, err))
	}
	s.major = num / 10000
	if num < 110000 {
		return fail(fmt.Errorf("%s %s: PostgreSQL %d is too old; verify needs 11 or newer (hashtextextended)", which, s.redacted, s.major))
	}
	for _, c := range s.all {
		if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
			return fail(fmt.Errorf("%s %s: begin: %w", which, s.redacted, err))
		}
	}
	if shareSnapshot && len(s.all) > 1 {
		if err := first.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&s.snapshot); err == nil {
			for _, c := range s.all[1:] {
				if _, err := c.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+s.snapshot+"'"); err != nil {
					return fail(fmt.Errorf("%s %s: share snapshot: %w", which, s.redacted, err))
				}
			}
		} else {
			// Some managed services forbid exporting snapshots; each connection then has its own
			// snapshot, which is exact only while nothing writes (as during a cutover freeze).
			s.snapshot = ""
			for _, c := range s.all {
				_, _ = c.Exec(ctx, "ROLLBACK")
				if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
					return fail(fmt.Errorf("%s %s: begin: %w", which, s.redacted, err))
				}
			}
		}
	}
	for _, c := range s.all {
		s.conns <- c
	}
	return s, nil
}

func (s *side) close() {
	for _, c := range s.all {
		ctx, cancel := context.WithTimeout(context.Background(), 5e9)
		_, _ = c.Exec(ctx, "ROLLBACK")
		_ = c.Close(ctx)
		cancel()
	}
	s.all = nil
}

// with runs fn on one of the side's connections.
func (s *side) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	var c *pgx.Conn
	select {
	case c = <-s.conns:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { s.conns <- c }()
	if err := fn(c); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	return nil
}

// both runs fn on the source and the target at the same time.
func both(ctx context.Context, src, tgt *side, fn func(ctx context.Context, s *side, i int) error) error {
	errs := make(chan error, 2)
	go func() { errs <- fn(ctx, src, 0) }()
	go func() { errs <- fn(ctx, tgt, 1) }()
	return errors.Join(<-errs, <-errs)
}
