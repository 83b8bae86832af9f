package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"
	"github.com/shtetl/zmanim-ops/internal/migrate"
)

// Migrate moves the database from the managed PostgreSQL to the box and proves nothing was lost.
// Runbooks calling these targets: migration/cutover.md and migration/rollback.md.
type Migrate mg.Namespace

// Dump writes a pg_dump directory-format dump of SOURCE_URL with parallel jobs.
//
// SOURCE_URL is postgres://user@host:5432/db?sslmode=require; pass "-" to read it from
// ZOPS_MIGRATE_SOURCE_URL. Keep the password out of the command line: put it in ~/.pgpass (or
// PGPASSWORD); it reaches pg_dump through a private pgpass file, never its arguments. The
// client's major version is matched to the server's (/usr/lib/postgresql/<N>/bin). A manifest
// (zops-manifest.json) records server and extension versions for migrate:restore.
//
// Options (environment):
//
//	ZOPS_MIGRATE_DIR        dump directory, must not exist (default .state/migrate/dump)
//	ZOPS_MIGRATE_JOBS       parallel pg_dump jobs (default: CPU count, at least 2)
//	ZOPS_MIGRATE_DUMP_ARGS  extra pg_dump arguments, e.g. --exclude-table-data=public.sessions
//	ZOPS_PG_BIN_DIR         directory holding pg_dump/pg_restore (default: newest found)
func (Migrate) Dump(ctx context.Context, source string) error {
	return migrate.DumpTarget(ctx, os.Stdout, source)
}

// Restore restores the dump into TARGET_URL: extensions first at the source's versions, then pg_restore with parallel jobs, then ANALYZE.
//
// TARGET_URL must name an empty database (pass "-" to read ZOPS_MIGRATE_TARGET_URL). Extension
// versions from the dump's manifest are compared with the target's and installed before any
// table; a version the target lacks stops the restore. Ownership and GRANTs are skipped by
// default (the managed source's roles do not exist on the box).
//
// Options (environment):
//
//	ZOPS_MIGRATE_DIR                        dump directory (default .state/migrate/dump)
//	ZOPS_MIGRATE_JOBS                       parallel pg_restore jobs (default: CPU count, at least 2)
//	ZOPS_MIGRATE_KEEP_OWNERS=1              restore owners and GRANTs too
//	ZOPS_MIGRATE_ALLOW_NONEMPTY=1           restore into a database that already has tables
//	ZOPS_MIGRATE_ALLOW_EXTENSION_MISMATCH=1 accept another extension version (verify will show it)
//	ZOPS_MIGRATE_USE_LIST                   pg_restore --use-list file (edited `pg_restore -l` output)
func (Migrate) Restore(ctx context.Context, target string) error {
	return migrate.RestoreTarget(ctx, os.Stdout, target)
}

// Verify proves SOURCE_URL and TARGET_URL hold the same schema, data and sequences; exits non-zero on any difference.
//
// Each database hashes its own rows per primary-key range (in parallel, one snapshot per side);
// only hashes and keys cross the network. Differing ranges are narrowed down to rows, listed
// as missing / extra / changed (with the changed columns). Values compare by meaning (-0 = 0,
// NaN = NaN, 1.50 = 1.5, geometry as EWKB with SRID, jsonb canonical, timestamps in UTC, NULL
// != ”). Schema: tables, columns, constraints, indexes, sequences, views, functions,
// triggers, extensions and versions. Sequences must be ahead of their columns. Prints a
// summary and writes a JSON report. Pass "-" for a URL to read ZOPS_MIGRATE_SOURCE_URL /
// ZOPS_MIGRATE_TARGET_URL; keep passwords in ~/.pgpass or PGPASSWORD, not in the arguments.
//
// Options (environment):
//
//	ZOPS_MIGRATE_REPORT       JSON report path (default .state/migrate/verify-<time>.json)
//	ZOPS_MIGRATE_PARALLEL     connections per database (default 4)
//	ZOPS_MIGRATE_MAX_ROWS     differing rows listed per table and kind (default 20)
//	ZOPS_MIGRATE_RANGE_MB     table size per checksum range (default 4)
//	ZOPS_MIGRATE_TABLES       only these tables' data, comma-separated (schema.table)
//	ZOPS_MIGRATE_NO_SNAPSHOT=1 do not share an exported snapshot (servers that forbid it)
func (Migrate) Verify(ctx context.Context, source, target string) error {
	return migrate.VerifyTarget(ctx, os.Stdout, source, target)
}

// Smoke calls every endpoint of migration/smoke-endpoints.txt on the API running against SOURCE_URL and against TARGET_URL, and compares the answers.
//
// It builds examples/zmanim-api (or uses ZOPS_SMOKE_API_BIN: the real API with the same
// environment contract), starts it twice on loopback, each with its own throwaway Redis (so one
// cache cannot answer for the other database), its own JWKS and origin-verify secret, and
// calls every listed endpoint (public, user-JWT and admin-JWT routes) on both. Status codes and
// JSON bodies must be equal; a 5xx counts as a failure. Prints one line per endpoint, writes a
// JSON report, exits non-zero on any difference. Pass "-" to read the URLs from
// ZOPS_MIGRATE_SOURCE_URL / ZOPS_MIGRATE_TARGET_URL.
//
// Options (environment):
//
//	ZOPS_SMOKE_ENDPOINTS    endpoint list (default migration/smoke-endpoints.txt)
//	ZOPS_SMOKE_API_BIN      API binary to run instead of building examples/zmanim-api
//	ZOPS_SMOKE_REDIS_ADDRS  two Redis servers host:port,host:port (default: two redis-server processes)
//	ZOPS_SMOKE_REPORT       JSON report path (default .state/migrate/smoke-<time>.json)
func (Migrate) Smoke(ctx context.Context, source, target string) error {
	return migrate.SmokeTarget(ctx, os.Stdout, source, target)
}
