package checksum

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// column is one table column as one side sees it.
type column struct {
	Name       string
	Type       string // format_type, e.g. "numeric(10,2)"
	Base       string // base type name (domains resolved), e.g. "numeric", "geometry", "_float8"
	Collatable bool
}

// tableInfo is one table as one side sees it.
type tableInfo struct {
	Schema, Name string
	Size         int64 // bytes in the main fork
	Columns      []column
	Key          []string // primary key columns in index order; empty when the table has none
}

func (t tableInfo) qualified() string { return pgx.Identifier{t.Schema, t.Name}.Sanitize() }
func (t tableInfo) display() string   { return t.Schema + "." + t.Name }

func (t tableInfo) col(name string) (column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return column{}, false
}

const tablesQuery = `
SELECT n.nspname, c.relname, pg_relation_size(c.oid),
  ARRAY(SELECT a.attname::text FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = c.oid AND i.indisprimary ORDER BY k.ord)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND ` + notSystemNS + ` AND ` + "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')" + `
ORDER BY 1, 2`

const columnsQuery = `
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
  CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END,
  a.attcollation <> 0
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' AND ` + notSystemNS + `
ORDER BY n.nspname, c.relname, a.attnum`

func loadTables(ctx context.Context, s *side) (map[string]*tableInfo, []string, error) {
	tables := map[string]*tableInfo{}
	var order []string
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, tablesQuery)
		if err != nil {
			return fmt.Errorf("list tables: %w", err)
		}
		for rows.Next() {
			t := &tableInfo{}
			if err := rows.Scan(&t.Schema, &t.Name, &t.Size, &t.Key); err != nil {
				rows.Close()
				return fmt.Errorf("list tables: %w", err)
			}
			tables[t.display()] = t
			order = append(order, t.display())
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list tables: %w", err)
		}
		rows, err = c.Query(ctx, columnsQuery)
		if err != nil {
			return fmt.Errorf("list columns: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var schema, table string
			var col column
			if err := rows.Scan(&schema, &table, &col.Name, &col.Type, &col.Base, &col.Collatable); err != nil {
				return fmt.Errorf("list columns: %w", err)
			}
			if t := tables[schema+"."+table]; t != nil {
				t.Columns = append(t.Columns, col)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list columns: %w", err)
		}
		var ext string
		err = c.QueryRow(ctx, `SELECT coalesce((SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'), '')`).Scan(&ext)
		if err != nil {
			return fmt.Errorf("find postgis: %w", err)
		}
		s.postgis = ext
		return nil
	})
	return tables, order, err
}

// canonical returns the SQL expression whose text form represents the column's value by meaning:
// equal values (as PostgreSQL compares them) print the same on both sides.
func canonical(s *side, c column) string {
	id := pgx.Identifier{c.Name}.Sanitize()
	pgis := func(fn string) string {
		if s.postgis == "" {
			return fn
		}
		return pgx.Identifier{s.postgis}.Sanitize() + "." + fn
	}
	switch c.Base {
	case "float4", "float8":
		// -0 = 0 in PostgreSQL but prints as "-0"; NaN = NaN already prints the same.
		return fmt.Sprintf("CASE WHEN %s = 0 THEN 0::%s ELSE %s END", id, c.Base, id)
	case "numeric":
		// 1.50 = 1.5 for PostgreSQL; trim_scale (13+) prints both as 1.5.
		if s.major >= 13 {
			return "trim_scale(" + id + ")"
		}
		return id
	case "geometry":
		// EWKB in little-endian byte order: exact coordinates and the SRID, whatever the server's
		// native byte order.
		if s.postgis != "" {
			return pgis("st_asewkb") + "(" + id + ", 'NDR')"
		}
	case "geography":
		if s.postgis != "" {
			return pgis("st_asewkb") + "(" + id + "::" + pgis("geometry") + ", 'NDR')"
		}
	}
	// jsonb prints canonically (sorted keys, no duplicates, fixed spacing); timestamptz prints in
	// the session's UTC; text prints its bytes; arrays and NULL vs '' are told apart by the
	// record output that wraps every value (NULL is empty, '' is "").
	return id
}

func rowHashExpr(s *side, t *tableInfo, cols []string) string {
	parts := make([]string, 0, len(cols))
	for _, name := range cols {
		c, _ := t.col(name)
		parts = append(parts, canonical(s, c))
	}
	return "hashtextextended(ROW(" + strings.Join(parts, ", ") + ")::text, 0)"
}

func colHashesExpr(s *side, t *tableInfo, cols []string) string {
	parts := make([]string, 0, len(cols))
	for _, name := range cols {
		c, _ := t.col(name)
		parts = append(parts, "hashtextextended(ROW("+canonical(s, c)+")::text, 0)")
	}
	return "ARRAY[" + strings.Join(parts, ", ") + "]::bigint[]"
}
