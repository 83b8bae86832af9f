-- Schema of the reference workload: the spec's core tables, small but with real types,
-- PostGIS geometry and the indexes the queries use. Idempotent.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE IF NOT EXISTS cities (
    id      bigint PRIMARY KEY,
    name    text NOT NULL,
    country text NOT NULL,
    admin1  text NOT NULL DEFAULT '',
    lat     double precision NOT NULL,
    lon     double precision NOT NULL,
    geom    geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
);
CREATE INDEX IF NOT EXISTS cities_geom_idx ON cities USING gist (geom);
CREATE INDEX IF NOT EXISTS cities_name_idx ON cities (lower(name) text_pattern_ops);

CREATE TABLE IF NOT EXISTS publishers (
    id         serial PRIMARY KEY,
    slug       text NOT NULL UNIQUE,
    name       text NOT NULL,
    owner_sub  text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS master_zmanim_registry (
    key         text PRIMARY KEY,
    name        text NOT NULL,
    zenith      double precision,
    description text
);

CREATE TABLE IF NOT EXISTS publisher_zmanim (
    publisher_id   integer NOT NULL REFERENCES publishers (id) ON DELETE CASCADE,
    zman_key       text NOT NULL REFERENCES master_zmanim_registry (key),
    offset_minutes integer NOT NULL DEFAULT 0,
    PRIMARY KEY (publisher_id, zman_key)
);

CREATE TABLE IF NOT EXISTS publisher_coverage (
    publisher_id integer NOT NULL REFERENCES publishers (id) ON DELETE CASCADE,
    city_id      bigint NOT NULL REFERENCES cities (id),
    PRIMARY KEY (publisher_id, city_id)
);
