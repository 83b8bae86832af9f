package testfix

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// PGServer is the test PostgreSQL server named by ZOPS_TEST_PG_URL (a superuser URL).
type PGServer struct {
	Super pgtool.Conn // superuser connection to the maintenance database
}

// RequirePG returns the test server, skipping (or failing in CI) when none is configured.
func RequirePG(t testing.TB) PGServer {
	t.Helper()
	raw := testenv.Require(t, testenv.PostgresURL)
	c, err := pgtool.ParseURL(raw)
	if err != nil {
		t.Fatalf("%s: %v", testenv.PostgresURL, err)
	}
	return PGServer{Super: c}
}

// Exec runs SQL on the maintenance database.
func (s PGServer) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ExecURL(t, s.Super.URL(), sql, args...)
}

// ExecURL runs SQL (possibly several statements when there are no args) on the database at url.
func ExecURL(t testing.TB, url, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", pgtool.MustParse(url).Redacted(), err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("exec %.200s: %v", sql, err)
	}
}

// NewDB creates an empty database (from template0, or from the database of the URL template
// when given) named zops_<prefix>_<random> and returns its URL; the database is dropped when
// the test ends.
func (s PGServer) NewDB(t testing.TB, prefix, template string) string {
	t.Helper()
	tpl := "template0"
	if template != "" {
		tpl = pgtool.MustParse(template).Database
	}
	return s.NewDBWith(t, prefix, "TEMPLATE "+pgx.Identifier{tpl}.Sanitize())
}

// NewDBWith is NewDB with the CREATE DATABASE options spelled out (e.g. a locale provider).
func (s PGServer) NewDBWith(t testing.TB, prefix, options string) string {
	t.Helper()
	name := fmt.Sprintf("zops_%s_%s", prefix, RandHex(5))
	s.Exec(t, fmt.Sprintf("CREATE DATABASE %s %s", pgx.Identifier{name}.Sanitize(), options))
	s.DropAtEnd(t, name)
	return s.Super.WithDatabase(name).URL()
}

// DropAtEnd drops the database name (if it exists by then) when the test ends: for databases
// the code under test creates next to a fixture's, such as a restore drill's.
func (s PGServer) DropAtEnd(t testing.TB, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, s.Super.URL())
		if err != nil {
			t.Logf("drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop %s: %v", name, err)
		}
	})
}

// DBName returns the database name of a URL.
func DBName(url string) string { return pgtool.MustParse(url).Database }

// Quote quotes a SQL literal.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
