// Package migrate moves a PostgreSQL + PostGIS database from one server to another and proves
// nothing was lost: Dump (pg_dump, directory format, parallel jobs, with a manifest of the
// source's versions), Restore (extensions created first at the source's versions, then
// pg_restore with parallel jobs), Verify (schema, data and sequences compared inside both
// databases, see package checksum), Smoke (the same API calls answered from both databases)
// and the verify benchmark.
//
// Connection URLs carry credentials; they are only ever printed redacted and reach the client
// programs through a private pgpass file (package pgtool).
package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
)

// Environment variables read by the mage targets.
const (
	EnvSourceURL = "ZOPS_MIGRATE_SOURCE_URL"
	EnvTargetURL = "ZOPS_MIGRATE_TARGET_URL"
)

// ErrDifferent is returned by RunVerify when the databases differ.
var ErrDifferent = errors.New("databases differ")

// ErrMissingURL reports a source or target that was not given.
var ErrMissingURL = errors.New("database URL not given")

// ResolveURLs picks the source and target URLs: positional arguments first, then env (the
// values of ZOPS_MIGRATE_SOURCE_URL / ZOPS_MIGRATE_TARGET_URL, read by the targets).
// needSource/needTarget say which are required.
func ResolveURLs(args []string, env [2]string, needSource, needTarget bool) (source, target string, err error) {
	if len(args) > 0 {
		source = args[0]
	}
	if len(args) > 1 {
		target = args[1]
	}
	if source == "" {
		source = env[0]
	}
	if target == "" {
		target = env[1]
	}
	var missing []string
	if needSource && source == "" {
		missing = append(missing, "source (first argument or "+EnvSourceURL+")")
	}
	if needTarget && target == "" {
		missing = append(missing, "target (second argument or "+EnvTargetURL+")")
	}
	if len(missing) > 0 {
		return "", "", fmt.Errorf("%w: %s; URLs look like postgres://user:password@host:5432/db?sslmode=require (prefer a password in ~/.pgpass)",
			ErrMissingURL, strings.Join(missing, ", "))
	}
	return source, target, nil
}

// Extension is an installed extension.
type Extension struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Schema  string `json:"schema"`
}

// serverInfo is what Dump and Restore need to know about a server.
type serverInfo struct {
	VersionNum int
	Version    string
	Encoding   string
	Extensions []Extension
	Tables     int
	Bytes      int64
	// ExtConfigTables are extension tables whose user rows pg_dump saves (spatial_ref_sys).
	ExtConfigTables int
}

func (s serverInfo) major() int { return s.VersionNum / 10000 }

func connect(ctx context.Context, which string, c pgtool.Conn) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return nil, fmt.Errorf("connect to %s %s: %w", which, c.Redacted(), scrub(err, c))
	}
	return conn, nil
}

// scrub removes the password from an error text, in case a driver ever echoes it.
func scrub(err error, c pgtool.Conn) error {
	if c.Password == "" || !strings.Contains(err.Error(), c.Password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), c.Password, "xxxxx"))
}

func readServerInfo(ctx context.Context, conn *pgx.Conn) (serverInfo, error) {
	var si serverInfo
	err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('server_version'),
		pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()`).Scan(&si.VersionNum, &si.Version, &si.Encoding)
	if err != nil {
		return si, fmt.Errorf("read server version: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT e.extname, e.extversion, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY e.extname`)
	if err != nil {
		return si, fmt.Errorf("list extensions: %w", err)
	}
	for rows.Next() {
		var e Extension
		if err := rows.Scan(&e.Name, &e.Version, &e.Schema); err != nil {
			rows.Close()
			return si, fmt.Errorf("list extensions: %w", err)
		}
		si.Extensions = append(si.Extensions, e)
	}
	if err := rows.Err(); err != nil {
		return si, fmt.Errorf("list extensions: %w", err)
	}
	err = conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`).Scan(&si.Tables, &si.Bytes)
	if err != nil {
		return si, fmt.Errorf("count tables: %w", err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_extension e, unnest(e.extconfig) c`).Scan(&si.ExtConfigTables); err != nil {
		return si, fmt.Errorf("count extension tables: %w", err)
	}
	return si, nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
