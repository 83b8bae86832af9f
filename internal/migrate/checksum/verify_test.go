package checksum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/testenv"
	"github.com/shtetl/zmanim-ops/internal/testfix"
)

// small ranges and leaves so that the fixture exercises range planning and bisection.
var testOpts = Options{Parallel: 3, RangeBytes: 24 << 10, LeafRows: 40, Fanout: 4, MaxRows: 10}

func verify(t *testing.T, src, tgt string, o Options) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Verify(ctx, src, tgt, o)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func text(r Report) string {
	var b strings.Builder
	_ = r.WriteText(&b)
	return b.String()
}

func table(r Report, name string) *TableReport {
	for _, t := range r.Tables {
		if t.Table == name {
			return t
		}
	}
	return nil
}

func hasSchemaDiff(kind, object, change string) func(Report) error {
	return func(r Report) error {
		for _, d := range r.Schema {
			if d.Kind == kind && strings.Contains(d.Object, object) && d.Change == change {
				return nil
			}
		}
		return fmt.Errorf("no %s diff for %s %s", change, kind, object)
	}
}

func hasRow(tbl, kind string, key []string, cols ...string) func(Report) error {
	return func(r Report) error {
		tr := table(r, tbl)
		if tr == nil {
			return fmt.Errorf("no report for table %s", tbl)
		}
		var list []RowDiff
		switch kind {
		case ChangeMissing:
			list = tr.Missing
		case ChangeExtra:
			list = tr.Extra
		default:
			list = tr.Changed
		}
		for _, d := range list {
			if key == nil || slices.Equal(d.Key, key) {
				if len(cols) > 0 && !slices.Equal(d.Columns, cols) {
					return fmt.Errorf("%s row %v: changed columns %v, want %v", tbl, d.Key, d.Columns, cols)
				}
				return nil
			}
		}
		return fmt.Errorf("%s: no %s row with key %v (missing %v extra %v changed %v)", tbl, kind, key, tr.Missing, tr.Extra, tr.Changed)
	}
}

func onlyDataDiffs(r Report) error {
	if len(r.Schema) != 0 || len(r.Sequences) != 0 {
		return fmt.Errorf("unexpected schema/sequence diffs: %v %v", r.Schema, r.Sequences)
	}
	return nil
}

func TestVerifyFaultInjection(t *testing.T) {
	srv := testfix.RequirePG(t)
	src := newFixture(t, srv, 1, 3000)

	tests := []struct {
		name   string
		mutate string
		checks []func(Report) error
	}{
		{"row missing", `DELETE FROM readings WHERE city_id = 500; DELETE FROM cities WHERE id = 500`,
			[]func(Report) error{hasRow("public.cities", ChangeMissing, []string{"500"}), hasRow("public.readings", ChangeMissing, []string{"500", "2025-01-01"})}},
		{"extra row", `INSERT INTO cities (id, name, country, population) VALUES (2999999, 'new', 'IL', 1)`,
			[]func(Report) error{hasRow("public.cities", ChangeExtra, []string{"2999999"})}},
		{"changed text", `UPDATE cities SET name = name || '.' WHERE id = 7`,
			[]func(Report) error{hasRow("public.cities", ChangeChanged, []string{"7"}, "name"), onlyDataDiffs}},
		{"changed number", `UPDATE cities SET population = population + 1 WHERE id = 1234`,
			[]func(Report) error{hasRow("public.cities", ChangeChanged, []string{"1234"}, "population")}},
		{"changed float by one ulp", `UPDATE cities SET elevation = elevation * (1 + 2.3e-16) WHERE id = 44`,
			[]func(Report) error{hasRow("public.cities", ChangeChanged, []string{"44"}, "elevation")}},
		{"NaN became 0", `UPDATE cities SET elevation = 0 WHERE id = 51`,
			[]func(Report) error{hasRow("public.cities", ChangeChanged, []string{"51"}, "elevation")}},
		{"NULL vs empty", `UPDATE cities SET note = '' WHERE id = 10`,
			[]func(Report) error{hasRow("public.cities", ChangeChanged, []string{"10"}, "note")}},
		{"empty array vs NULL", `UPDATE cities SET tags = NULL WHERE id = 1`,
			[]func(Report) error{hasRow("public.cities", ChangeChanged, []string{"1"}, "tags")}},
		{"geometry moved 1e-9 degrees", `UPDATE cities SET geom = ST_SetSRID(ST_MakePoint(ST_X(geom) + 1e-9, ST_Y(geom)), 4326) WHERE id = 13`,
			[]func(Report) error{hasRow("public.cities", ChangeChanged, []string{"13"}, "geom")}},
		{"SRID changed", `UPDATE cities SET area = ST_SetSRID(area, 3857) WHERE id = 17`,
			[]func(Report) error{hasRow("public.cities", ChangeChanged, []string{"17"}, "area")}},
		{"jsonb changed", `UPDATE cities SET info = jsonb_set(info, '{tags,1}', '99') WHERE id = 19`,
			[]func(Report) error{hasRow("public.cities", ChangeChanged, []string{"19"}, "info")}},
		{"timestamp shifted", `UPDATE cities SET updated = updated + interval '1 microsecond' WHERE id = 23`,
			[]func(Report) error{hasRow("public.cities", ChangeChanged, []string{"23"}, "updated")}},
		{"numeric changed in last digit", `UPDATE cities SET price = price + 0.0001 WHERE id = 29`,
			[]func(Report) error{hasRow("public.cities", ChangeChanged, []string{"29"}, "price")}},
		{"composite key row changed", `UPDATE readings SET value = value + 1 WHERE city_id = 20 AND day = '2025-01-02'`,
			[]func(Report) error{hasRow("public.readings", ChangeChanged, []string{"20", "2025-01-02"}, "value")}},
		{"text key row missing", `DELETE FROM codes WHERE code = 'é'`,
			[]func(Report) error{hasRow("public.codes", ChangeMissing, []string{"é"})}},
		{"uuid key row changed", `UPDATE users SET email = 'x' || email WHERE id = (SELECT id FROM users ORDER BY id LIMIT 1)`,
			[]func(Report) error{hasRow("public.users", ChangeChanged, nil, "email")}},
		{"enum changed", `UPDATE misc SET m = CASE m WHEN 'happy' THEN 'sad'::mood ELSE 'happy'::mood END WHERE id = 3`,
			[]func(Report) error{hasRow("public.misc", ChangeChanged, []string{"3"}, "m")}},
		{"bytea changed", `UPDATE misc SET raw = raw || '\x00'::bytea WHERE id = 4`,
			[]func(Report) error{hasRow("public.misc", ChangeChanged, []string{"4"}, "raw")}},
		{"interval changed", `UPDATE misc SET iv = iv + interval '1 second' WHERE id = 6`,
			[]func(Report) error{hasRow("public.misc", ChangeChanged, []string{"6"}, "iv")}},
		{"boolean flipped", `UPDATE misc SET ok = NOT ok WHERE id = 8`,
			[]func(Report) error{hasRow("public.misc", ChangeChanged, []string{"8"}, "ok")}},
		{"odd names", `UPDATE "Other Schema"."Odd ""Name""" SET "Weird.Col" = 0 WHERE "Key Col" = 'k''7 "x"'`,
			[]func(Report) error{hasRow(`"Other Schema"."Odd ""Name"""`, ChangeChanged, []string{`k'7 "x"`}, "Weird.Col")}},
		{"table without key changed", `UPDATE logs SET n = n + 1 WHERE ctid = (SELECT min(ctid) FROM logs)`,
			[]func(Report) error{func(r Report) error {
				tr := table(r, "public.logs")
				if tr == nil || tr.Method != MethodWhole || tr.MissingCount != 1 || tr.ExtraCount != 1 {
					return fmt.Errorf("logs: want whole-table with 1 missing and 1 extra, got %+v", tr)
				}
				return nil
			}}},
		{"sequence behind", `SELECT setval('cities_id_seq', 5)`,
			[]func(Report) error{func(r Report) error {
				if len(r.Sequences) != 1 || r.Sequences[0].Sequence != "public.cities_id_seq" || !strings.Contains(r.Sequences[0].Problem, "behind its column") {
					return fmt.Errorf("want cities_id_seq behind its column, got %v", r.Sequences)
				}
				return nil
			}}},
		{"standalone sequence behind its DEFAULT column", `SELECT setval('ticket_seq', 3)`,
			[]func(Report) error{func(r Report) error {
				if len(r.Sequences) != 1 || r.Sequences[0].Sequence != "public.ticket_seq" || r.Sequences[0].Column != "public.logs.ticket" {
					return fmt.Errorf("want ticket_seq behind logs.ticket, got %v", r.Sequences)
				}
				return nil
			}}},
		{"index missing", `DROP INDEX cities_name_idx`, []func(Report) error{hasSchemaDiff(KindIndex, "cities_name_idx", ChangeMissing)}},
		{"constraint missing", `ALTER TABLE cities DROP CONSTRAINT cities_population_check`,
			[]func(Report) error{hasSchemaDiff(KindConstraint, "cities_population_check", ChangeMissing)}},
		{"extension version differs", `ALTER EXTENSION postgis UPDATE TO '3.3.2next'`,
			[]func(Report) error{hasSchemaDiff(KindExtension, "postgis", ChangeChanged)}},
		{"column type differs", `ALTER TABLE cities ALTER COLUMN population TYPE bigint`,
			[]func(Report) error{hasSchemaDiff(KindColumn, "cities.population", ChangeChanged)}},
		{"table missing", `DROP TABLE logs`,
			[]func(Report) error{hasSchemaDiff(KindTable, "public.logs", ChangeMissing), func(r Report) error {
				if tr := table(r, "public.logs"); tr == nil || tr.Method != MethodSkipped {
					return fmt.Errorf("logs: want skipped, got %+v", tr)
				}
				return nil
			}}},
		{"trigger missing", `DROP TRIGGER cities_touch ON cities`, []func(Report) error{hasSchemaDiff(KindTrigger, "cities_touch", ChangeMissing)}},
		{"function changed", `CREATE OR REPLACE FUNCTION cities_touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$`,
			[]func(Report) error{hasSchemaDiff(KindFunction, "cities_touch", ChangeChanged)}},
		{"target empty table", `DELETE FROM readings; DELETE FROM cities`,
			[]func(Report) error{func(r Report) error {
				tr := table(r, "public.cities")
				if tr == nil || tr.TargetRows != 0 || tr.SourceRows != 3000 || tr.MissingCount == 0 || len(tr.Missing) != testOpts.MaxRows {
					return fmt.Errorf("cities: want 3000 vs 0 rows with %d missing listed, got %+v", testOpts.MaxRows, tr)
				}
				if tr.Missing[0].Key[0] != "1" {
					return fmt.Errorf("cities: first missing key %v, want 1 (key order)", tr.Missing[0].Key)
				}
				return nil
			}}},
	}
	// Clone every target first: CREATE DATABASE ... TEMPLATE needs the source to be idle, so
	// the verifications (which connect to it) can then run in parallel.
	targets := make([]string, len(tests))
	for i, tt := range tests {
		targets[i] = srv.NewDB(t, "tgt", src)
		testfix.ExecURL(t, targets[i], tt.mutate)
	}
	for i, tt := range tests {
		tgt := targets[i]
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := verify(t, src, tgt, testOpts)
			if rep.Identical {
				t.Fatalf("verify reports identical after %q:\n%s", tt.mutate, text(rep))
			}
			for _, check := range tt.checks {
				if err := check(rep); err != nil {
					t.Errorf("%v\n%s", err, text(rep))
				}
			}
		})
	}
}

// TestVerifyIdentical checks that equal data reports nothing, over several seeds, also when the
// target stores equal values differently (-0 for 0, 1.50 for 1.5, jsonb written in another
// key order, rows inserted in another physical order).
func TestVerifyIdentical(t *testing.T) {
	srv := testfix.RequirePG(t)
	for _, seed := range []int{1, 42, 97} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			src := newFixture(t, srv, seed, 2000)
			tgt := srv.NewDB(t, "tgt", src)
			testfix.ExecURL(t, tgt, `
				UPDATE cities SET price = price * 1.00 WHERE id % 3 = 0;
				UPDATE cities SET elevation = -elevation WHERE elevation = 0;
				UPDATE cities SET info = (SELECT jsonb_object_agg(k, v) FROM (SELECT * FROM jsonb_each(info) ORDER BY key DESC) e(k, v)) WHERE id % 5 = 0;
				UPDATE misc SET amounts[1] = -0::float8 WHERE amounts[1] = 0;
				UPDATE misc SET iv = interval '24 hours' WHERE iv = interval '1 day';
				CLUSTER cities USING cities_name_idx;`)
			testfix.ExecURL(t, tgt, `VACUUM FULL logs`)
			for _, o := range []Options{testOpts, {}} {
				rep := verify(t, src, tgt, o)
				if !rep.Identical {
					t.Fatalf("identical data reported different:\n%s", text(rep))
				}
				if tr := table(rep, "public.cities"); tr == nil || tr.SourceRows != 2000 || tr.TargetRows != 2000 {
					t.Fatalf("cities rows: %+v", tr)
				}
				if tr := table(rep, "public.empty_things"); tr == nil || !tr.Identical() || tr.SourceRows != 0 {
					t.Fatalf("empty table: %+v", tr)
				}
				if !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "public.logs has no primary key") }) {
					t.Fatalf("no warning for the table without primary key: %v", rep.Warnings)
				}
			}
		})
	}
}

func TestVerifyBadInput(t *testing.T) {
	srv := testfix.RequirePG(t)
	good := srv.NewDB(t, "ok", "")
	srv.Exec(t, `DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'zops_pw_test') THEN CREATE ROLE zops_pw_test LOGIN PASSWORD 'right-password'; END IF; END$$`)
	wrongPw := srv.Super
	wrongPw.User, wrongPw.Password = "zops_pw_test", "wrong-password"
	wrongPw = wrongPw.WithDatabase(testfix.DBName(good))
	missingDB := srv.Super.WithDatabase("zops_no_such_db")
	tests := []struct {
		name   string
		target string
		want   error
		skip   func() bool
	}{
		{"unreachable host", "postgres://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=3", ErrUnreachable, nil},
		{"no such database", missingDB.URL(), ErrNoDatabase, nil},
		{"wrong password", wrongPw.URL(), ErrAuth, nil},
		{"not a postgres url", "mysql://x@y/z", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := Verify(ctx, good, tt.target, Options{})
			if err == nil {
				if tt.name == "wrong password" && !testenv.Required() {
					t.Skip("test server trusts every login (no password authentication configured)")
				}
				t.Fatal("Verify succeeded, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), "wrong-password") {
				t.Fatalf("error leaks the password: %v", err)
			}
			if !strings.Contains(err.Error(), "target") {
				t.Fatalf("error does not say which side failed: %v", err)
			}
			t.Logf("error: %v", err)
		})
	}
}

// TestVerifyAcrossCollations restores the fixture into a database whose default collation is
// ICU en-US (where 'a' < 'B', unlike C): text keys then sort differently in the two databases,
// which must neither move rows between ranges nor cause false differences.
func TestVerifyAcrossCollations(t *testing.T) {
	srv := testfix.RequirePG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src := newFixture(t, srv, 5, 1500)
	tgt := srv.NewDBWith(t, "icu", "TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
	dir := t.TempDir() + "/dump"
	if err := pgtool.Dump(ctx, pgtool.DumpOptions{Conn: pgtool.MustParse(src), Dir: dir, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	if err := pgtool.Restore(ctx, pgtool.RestoreOptions{Conn: pgtool.MustParse(tgt), Dir: dir, Jobs: 2, ExitOnError: true}); err != nil {
		t.Fatal(err)
	}
	testfix.ExecURL(t, tgt, "ANALYZE")
	rep := verify(t, src, tgt, testOpts)
	if !rep.Identical {
		t.Fatalf("restore into an ICU database reported different:\n%s", text(rep))
	}
	if tr := table(rep, "public.codes"); tr == nil || tr.Ranges < 2 {
		t.Fatalf("codes should be split into several text-key ranges: %+v", tr)
	}
	if !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "collation differs") }) {
		t.Fatalf("no collation warning: %v", rep.Warnings)
	}
	// A change in a text-keyed row is still found exactly.
	testfix.ExecURL(t, tgt, `UPDATE codes SET label = 'x' WHERE code = 'B'`)
	rep = verify(t, src, tgt, testOpts)
	if err := hasRow("public.codes", ChangeChanged, []string{"B"}, "label")(rep); err != nil || rep.Identical {
		t.Fatalf("%v\n%s", err, text(rep))
	}
}

// TestVerifyInCDatabases runs with both databases in the C locale, where text keys keep their
// own order (and index); a missing text-keyed row is still found.
func TestVerifyInCDatabases(t *testing.T) {
	srv := testfix.RequirePG(t)
	src := srv.NewDBWith(t, "csrc", "TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'")
	testfix.ExecURL(t, src, fixtureSchema)
	testfix.ExecURL(t, src, fixtureData(3, 1500))
	tgt := srv.NewDB(t, "ctgt", src)
	testfix.ExecURL(t, tgt, `DELETE FROM codes WHERE code = 'Z'`)
	rep := verify(t, src, tgt, testOpts)
	if err := hasRow("public.codes", ChangeMissing, []string{"Z"})(rep); err != nil || rep.Identical {
		t.Fatalf("%v\n%s", err, text(rep))
	}
	if tr := table(rep, "public.codes"); tr.Ranges < 2 || tr.MissingCount != 1 || tr.ExtraCount != 0 {
		t.Fatalf("codes: %+v", tr)
	}
}
