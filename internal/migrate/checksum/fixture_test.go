package checksum

import (
	"fmt"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/testfix"
)

// fixtureSchema covers every kind of key and value the verifier must handle: bigserial,
// composite, text and uuid keys, a table without a key, an empty table, floats with NaN and
// -0, numerics, geometry with and without a fixed SRID, jsonb, timestamptz, arrays, NULL vs ”,
// unicode and large text, plus an index, constraints, a function and a trigger.
const fixtureSchema = `
CREATE EXTENSION postgis;
CREATE TABLE cities (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  country char(2) NOT NULL,
  population integer NOT NULL CONSTRAINT cities_population_check CHECK (population >= 0),
  elevation double precision,
  timezone text,
  geom geometry(Point, 4326),
  area geometry,
  info jsonb,
  updated timestamptz,
  tags text[],
  price numeric,
  note text
);
CREATE INDEX cities_name_idx ON cities (name);
CREATE INDEX cities_geom_idx ON cities USING gist (geom);
CREATE TABLE readings (
  city_id bigint NOT NULL REFERENCES cities(id),
  day date NOT NULL,
  value real,
  PRIMARY KEY (city_id, day)
);
CREATE TABLE codes (code text PRIMARY KEY, label varchar(200));
CREATE TABLE users (id uuid PRIMARY KEY, email text UNIQUE, created timestamptz);
CREATE SCHEMA "Other Schema";
CREATE TABLE "Other Schema"."Odd ""Name""" ("Key Col" text PRIMARY KEY, "Weird.Col" int);
CREATE SEQUENCE ticket_seq;
CREATE TABLE logs (msg text, n integer, ticket bigint DEFAULT nextval('ticket_seq'));
CREATE TABLE empty_things (id integer PRIMARY KEY, what text);
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE misc (id integer PRIMARY KEY, m mood, doc json, ok boolean, d date, iv interval, raw bytea,
  amounts float8[], span int4range, ts timestamp);
CREATE FUNCTION cities_touch() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN NEW.updated := coalesce(NEW.updated, now()); RETURN NEW; END$$;
CREATE TRIGGER cities_touch BEFORE INSERT ON cities FOR EACH ROW EXECUTE FUNCTION cities_touch();
`

// fixtureData fills the tables deterministically from seed (PostgreSQL's setseed).
func fixtureData(seed int, rows int) string {
	return fmt.Sprintf(`
SELECT setseed(%f);
INSERT INTO cities (name, country, population, elevation, timezone, geom, area, info, updated, tags, price, note)
SELECT
  CASE WHEN g %% 97 = 0 THEN 'Zürich ✡ 東京 ' || g ELSE 'city-' || md5(random()::text) END,
  (ARRAY['IL','US','FR','GB','DE'])[1 + (g %% 5)],
  (random() * 1e6)::int,
  CASE WHEN g %% 50 = 1 THEN 'NaN'::float8 WHEN g %% 50 = 2 THEN '-0'::float8 WHEN g %% 50 = 3 THEN '+Infinity'::float8
       ELSE random() * 3000 - 100 END,
  'Asia/Jerusalem',
  ST_SetSRID(ST_MakePoint(random() * 360 - 180, random() * 180 - 90), 4326),
  CASE WHEN g %% 3 = 0 THEN ST_SetSRID(ST_MakePoint(random(), random()), 4326) ELSE ST_MakePoint(random(), random()) END,
  jsonb_build_object('pop', g, 'tags', jsonb_build_array('a', g %% 7), 'f', random()),
  timestamptz '2024-01-01 00:00:00+00' + (random() * 1e8) * interval '1 second',
  CASE WHEN g %% 4 = 0 THEN ARRAY['x', 'y ' || g, NULL] WHEN g %% 4 = 1 THEN '{}'::text[] ELSE NULL END,
  round((random() * 1e6)::numeric, 4),
  CASE WHEN g %% 10 = 0 THEN NULL WHEN g %% 10 = 1 THEN '' WHEN g %% 100 = 2 THEN repeat('large ', 20000) ELSE 'n' || g END
FROM generate_series(1, %d) g;
INSERT INTO readings SELECT c.id, date '2025-01-01' + d, CASE WHEN d = 3 THEN 'NaN'::real ELSE random()::real END
FROM cities c, generate_series(0, 4) d WHERE c.id %% 10 = 0;
INSERT INTO codes SELECT code, 'label ' || code FROM unnest(ARRAY['a', 'B', 'b', 'é', 'Z', 'ä', 'a b', 'ß', '東', '_x', '10', '9']) code;
INSERT INTO codes SELECT 'k' || g || md5(random()::text), 'generated' FROM generate_series(1, %d) g;
INSERT INTO users SELECT md5(random()::text || g)::uuid, 'u' || g || '@example.org', now() FROM generate_series(1, %d) g;
INSERT INTO misc SELECT g, (ARRAY['sad','ok','happy']::mood[])[1 + g %% 3], json_build_object('b', g, 'a', 'x'), g %% 2 = 0,
  CASE WHEN g = 1 THEN 'infinity'::date ELSE date '2020-01-01' + g END, CASE WHEN g %% 2 = 0 THEN interval '1 day' ELSE interval '90 minutes' END,
  CASE WHEN g %% 5 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END,
  CASE WHEN g %% 3 = 0 THEN ARRAY[0::float8, 'NaN', 1.5] ELSE ARRAY[random()] END, int4range(g, g + 10), timestamp '2024-02-29 12:00' + g * interval '1 hour'
FROM generate_series(1, %d) g;
INSERT INTO "Other Schema"."Odd ""Name""" SELECT 'k''' || g || ' "x"', g FROM generate_series(1, 300) g;
INSERT INTO logs SELECT 'log ' || (g %% 50), g %% 7 FROM generate_series(1, %d) g;
ANALYZE;
`, float64(seed%100)/100, rows, rows/4, rows/2, rows/5, rows/3)
}

// newFixture creates a source database holding the fixture for seed.
func newFixture(t *testing.T, srv testfix.PGServer, seed, rows int) string {
	t.Helper()
	src := srv.NewDB(t, "src", "")
	testfix.ExecURL(t, src, fixtureSchema)
	testfix.ExecURL(t, src, fixtureData(seed, rows))
	return src
}
