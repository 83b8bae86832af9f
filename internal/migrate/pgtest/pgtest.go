// Package pgtest gives integration tests scratch PostgreSQL databases on the server named by
// ZOPS_TEST_PG_URL (a superuser URL): each test creates uniquely named databases and drops
// them when it ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// Server is the test PostgreSQL server.
type Server struct {
	Super pgtool.Conn // superuser connection to the maintenance database
}

// Require returns the test server, skipping (or failing in CI) when none is configured.
func Require(t testing.TB) Server {
	t.Helper()
	raw := testenv.Require(t, testenv.PostgresURL)
	c, err := pgtool.ParseURL(raw)
	if err != nil {
		t.Fatalf("%s: %v", testenv.PostgresURL, err)
	}
	return Server{Super: c}
}

// Exec runs SQL on the maintenance database.
func (s Server) Exec(t testing.TB, sql string, args ...any) {
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

// NewDB creates an empty database (from template0, or from template when given) and returns
// its URL; the database is dropped when the test ends.
func (s Server) NewDB(t testing.TB, prefix, template string) string {
	t.Helper()
	tpl := "template0"
	if template != "" {
		tpl = pgtool.MustParse(template).Database
	}
	return s.NewDBWith(t, prefix, "TEMPLATE "+pgx.Identifier{tpl}.Sanitize())
}

// NewDBWith is NewDB with the CREATE DATABASE options spelled out (e.g. a locale provider).
func (s Server) NewDBWith(t testing.TB, prefix, options string) string {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	name := fmt.Sprintf("zops_%s_%s", prefix, hex.EncodeToString(b))
	s.Exec(t, fmt.Sprintf("CREATE DATABASE %s %s", pgx.Identifier{name}.Sanitize(), options))
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
	return s.Super.WithDatabase(name).URL()
}

// DBName returns the database name of a URL.
func DBName(url string) string { return pgtool.MustParse(url).Database }

// Quote quotes a SQL literal.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
