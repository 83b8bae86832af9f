package migrate

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/migrate/checksum"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/testfix"
)

const e2eSchema = `
CREATE EXTENSION postgis;
CREATE TABLE cities (id bigserial PRIMARY KEY, name text NOT NULL, population int CHECK (population >= 0),
  elevation float8, geom geometry(Point, 4326), info jsonb, updated timestamptz);
CREATE INDEX cities_geom_idx ON cities USING gist (geom);
CREATE TYPE plan AS ENUM ('free', 'pro');
CREATE TABLE publishers (id uuid PRIMARY KEY, name text UNIQUE, created timestamptz DEFAULT now(), plan plan);
CREATE TABLE publisher_cities (publisher_id uuid REFERENCES publishers, city_id bigint REFERENCES cities, PRIMARY KEY (publisher_id, city_id));
CREATE TABLE audit (at timestamptz, what text);
SELECT setseed(0.5);
INSERT INTO cities (name, population, elevation, geom, info, updated)
SELECT 'c' || g || CASE WHEN g % 13 = 0 THEN ' ✡ Ñ' ELSE '' END, g, CASE WHEN g % 17 = 0 THEN 'NaN' WHEN g % 19 = 0 THEN '-0' ELSE random() * 100 END,
  ST_SetSRID(ST_MakePoint(random() * 10, random() * 10), 4326), jsonb_build_object('g', g), now()
FROM generate_series(1, 20000) g;
INSERT INTO publishers SELECT md5(g::text)::uuid, 'p' || g, now(), CASE WHEN g % 2 = 0 THEN 'pro'::plan ELSE 'free' END FROM generate_series(1, 50) g;
INSERT INTO publisher_cities SELECT md5((g % 50 + 1)::text)::uuid, g FROM generate_series(1, 5000) g;
INSERT INTO audit SELECT now(), 'x' || g FROM generate_series(1, 100) g;
`

func TestDumpRestoreVerify(t *testing.T) {
	srv := testfix.RequirePG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src := srv.NewDB(t, "src", "")
	testfix.ExecURL(t, src, e2eSchema)

	// Dump as a role with a password: it can only authenticate through the pgpass file.
	srv.Exec(t, `DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'zops_pw_test') THEN CREATE ROLE zops_pw_test LOGIN PASSWORD 'right-password'; END IF; END$$`)
	srv.Exec(t, `GRANT pg_read_all_data TO zops_pw_test`)
	reader := pgtool.MustParse(src)
	reader.User, reader.Password = "zops_pw_test", "right-password"

	dir := filepath.Join(t.TempDir(), "dump")
	var out bytes.Buffer
	m, err := Dump(ctx, DumpOptions{SourceURL: reader.URL(), Dir: dir, Jobs: 2, Out: &out})
	if err != nil {
		t.Fatalf("Dump: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "right-password") {
		t.Fatalf("dump output shows the password:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "dump: [") || !strings.Contains(out.String(), "public.cities") {
		t.Fatalf("dump shows no per-table progress:\n%s", out.String())
	}
	if len(m.Extensions) == 0 || m.Tables != 4 {
		t.Fatalf("manifest: %+v", m)
	}
	if _, err := Dump(ctx, DumpOptions{SourceURL: src, Dir: dir, Out: &out}); !errors.Is(err, ErrDirExists) {
		t.Fatalf("second dump into %s: err %v, want ErrDirExists", dir, err)
	}

	tgt := srv.NewDB(t, "tgt", "")
	out.Reset()
	if err := Restore(ctx, RestoreOptions{TargetURL: tgt, Dir: dir, Jobs: 2, Out: &out}); err != nil {
		t.Fatalf("Restore: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "extension postgis source") || !strings.Contains(out.String(), "restore: [") {
		t.Fatalf("restore output lacks extension check or progress:\n%s", out.String())
	}
	// Restoring again into the now non-empty target is refused.
	if err := Restore(ctx, RestoreOptions{TargetURL: tgt, Dir: dir, Out: &out}); !errors.Is(err, ErrTargetNotEmpty) {
		t.Fatalf("restore into non-empty: err %v, want ErrTargetNotEmpty", err)
	}

	out.Reset()
	report := filepath.Join(t.TempDir(), "report.json")
	rep, err := RunVerify(ctx, VerifyOptions{SourceURL: src, TargetURL: tgt, ReportPath: report, Out: &out})
	if err != nil {
		t.Fatalf("RunVerify after restore: %v\n%s", err, out.String())
	}
	if !rep.Identical || len(rep.Tables) != 4 {
		t.Fatalf("verify after restore:\n%s", out.String())
	}

	// One change on the target: verify fails with ErrDifferent and names the row.
	testfix.ExecURL(t, tgt, `UPDATE cities SET name = 'moved' WHERE id = 12345`)
	out.Reset()
	_, err = RunVerify(ctx, VerifyOptions{SourceURL: src, TargetURL: tgt, ReportPath: report, Out: &out,
		Checksum: checksum.Options{Parallel: 2}})
	if !errors.Is(err, ErrDifferent) {
		t.Fatalf("RunVerify after a change: err %v, want ErrDifferent\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "changed:           id=12345 columns name") {
		t.Fatalf("summary does not name the changed row:\n%s", out.String())
	}
}

func TestRestoreRefusesExtensionMismatch(t *testing.T) {
	srv := testfix.RequirePG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := srv.NewDB(t, "src", "")
	testfix.ExecURL(t, src, `CREATE EXTENSION postgis; CREATE TABLE p (id int PRIMARY KEY, g geometry)`)
	dir := filepath.Join(t.TempDir(), "dump")
	var out bytes.Buffer
	if _, err := Dump(ctx, DumpOptions{SourceURL: src, Dir: dir, Out: &out}); err != nil {
		t.Fatalf("Dump: %v\n%s", err, out.String())
	}
	tgt := srv.NewDB(t, "tgt", "")
	testfix.ExecURL(t, tgt, `CREATE EXTENSION postgis; ALTER EXTENSION postgis UPDATE TO '3.3.2next'`)
	err := Restore(ctx, RestoreOptions{TargetURL: tgt, Dir: dir, Out: &out})
	if !errors.Is(err, ErrExtensionMismatch) || !strings.Contains(err.Error(), "postgis is installed at 3.3.2next") {
		t.Fatalf("Restore: err %v, want ErrExtensionMismatch naming postgis", err)
	}
}

func TestResolveURLs(t *testing.T) {
	env := [2]string{"postgres://env-src/db", ""}
	s, tg, err := ResolveURLs([]string{"", "postgres://arg-tgt/db"}, env, true, true)
	if err != nil || s != "postgres://env-src/db" || tg != "postgres://arg-tgt/db" {
		t.Fatalf("ResolveURLs = %q %q %v", s, tg, err)
	}
	if _, _, err := ResolveURLs(nil, [2]string{}, true, true); !errors.Is(err, ErrMissingURL) || !strings.Contains(err.Error(), EnvTargetURL) {
		t.Fatalf("missing target: %v", err)
	}
}

func TestDumpFailureLeavesNoPartialDump(t *testing.T) {
	srv := testfix.RequirePG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := srv.NewDB(t, "src", "")
	testfix.ExecURL(t, src, `CREATE TABLE secret (id int PRIMARY KEY); INSERT INTO secret VALUES (1)`)
	// A password, so the test works whether the server trusts loopback or asks (scram).
	srv.Exec(t, `DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'zops_noread') THEN CREATE ROLE zops_noread LOGIN; END IF; END$$`)
	srv.Exec(t, `ALTER ROLE zops_noread PASSWORD 'noread-pw'`)
	noread := pgtool.MustParse(src)
	noread.User, noread.Password = "zops_noread", "noread-pw"
	dir := filepath.Join(t.TempDir(), "dump")
	var out bytes.Buffer
	_, err := Dump(ctx, DumpOptions{SourceURL: noread.URL(), Dir: dir, Out: &out})
	var exitErr *pgtool.ExitError
	if !errors.As(err, &exitErr) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Dump without read rights: err %v, want pg_dump's permission error", err)
	}
	if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
		t.Fatalf("partial dump directory left behind: %v", statErr)
	}
}
