package checksum

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// column is one table column as one side sees it.
type column struct {
	Name       string
	Type       string // format_type, e.g. "numeric(10,2)"
	Base       string // base type name (domains resolved), e.g. "numeric", "geometry", "_float8"
	Collatable bool
	Kind       string // pg_type.typtype of the base type: b, c, e (enum), r (range), ...
	Elem       string // for arrays: the element's base type name, "" otherwise
	ElemKind   string // for arrays: the element's typtype
	// Bytewise: the column's collation is C or POSIX, so its own order (and its indexes) equal
	// COLLATE "C" order.
	Bytewise bool
}

// tableInfo is one table as one side sees it.
type tableInfo struct {
	Schema, Name string
	Size         int64 // bytes in the main fork
	Columns      []column
	Key          []string // primary key columns in index order; empty when the table has none
}

func (t tableInfo) qualified() string { return pgx.Identifier{t.Schema, t.Name}.Sanitize() }
func (t tableInfo) display() string   { return quoteIdent(t.Schema) + "." + quoteIdent(t.Name) }

// quoteIdent quotes an identifier the way format('%I') does for names that need it (keywords
// aside), so data and schema reports name tables alike.
func quoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (i > 0 && (r >= '0' && r <= '9' || r == '$'))) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

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
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), b.typname, a.attcollation <> 0,
  b.typtype::text, coalesce(e.typname::text, ''), coalesce(e.typtype::text, ''),
  a.attcollation = 100, coalesce(co.collprovider = 'c' AND co.collcollate IN ('C', 'POSIX'), false)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
LEFT JOIN pg_collation co ON co.oid = a.attcollation
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
			var isDefault, isC bool
			if err := rows.Scan(&schema, &table, &col.Name, &col.Type, &col.Base, &col.Collatable, &col.Kind, &col.Elem, &col.ElemKind, &isDefault, &isC); err != nil {
				return fmt.Errorf("list columns: %w", err)
			}
			col.Bytewise = isC || (isDefault && (s.defaultColl == "libc:C" || s.defaultColl == "libc:POSIX"))
			if t := tables[(tableInfo{Schema: schema, Name: table}).display()]; t != nil {
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

// typedHash names, per base type, PostgreSQL's own extended (64-bit, seeded) hash function of
// the type's default hash operator class: the function hash joins and hash partitioning use,
// so values equal by the type's "=" hash equal (-0 and 0, every NaN, 1.50 and 1.5, jsonb with
// another key order or 1.0 for 1, 1 day and 24 hours), and the hashes are stable across major
// versions. They hash the binary value, so no text is formatted: that is most of the speed.
var typedHash = map[string]string{
	"int2": "hashint2extended", "int4": "hashint4extended", "int8": "hashint8extended",
	"float4": "hashfloat4extended", "float8": "hashfloat8extended",
	"numeric": "hash_numeric_extended",
	"text":    "hashtextextended", "varchar": "hashtextextended", "bpchar": "hashbpcharextended",
	"name": "hashnameextended",
	"uuid": "uuid_hash_extended", "jsonb": "jsonb_hash_extended",
	"time": "time_hash_extended", "timetz": "timetz_hash_extended", "interval": "interval_hash_extended",
	"timestamp": "timestamp_hash_extended",
	"inet":      "hashinetextended", "cidr": "hashinetextended",
	"macaddr": "hashmacaddrextended", "macaddr8": "hashmacaddr8extended",
}

// arrayElemOK lists element types whose array hash (hash_array_extended, element by element)
// depends only on the values: not enums, whose hash is their OID and differs between databases.
var arrayElemOK = map[string]bool{
	"int2": true, "int4": true, "int8": true, "float4": true, "float8": true, "numeric": true,
	"text": true, "varchar": true, "bpchar": true, "uuid": true, "jsonb": true, "bool": true,
	"date": true, "time": true, "timestamp": true, "timestamptz": true, "interval": true, "bytea": true,
}

// colHash returns a bigint SQL expression hashing the column's value by meaning, seeded with
// the column's position so equal values in different columns hash differently. NULL maps to a
// per-column constant, distinct (but for chance 2^-64) from every value, ” included.
func colHash(s *side, c column, seed int) string {
	id := pgx.Identifier{c.Name}.Sanitize()
	if c.Collatable {
		// Text compares bytewise under a fixed collation, whatever the column's collation.
		id += ` COLLATE "C"`
	}
	pgis := func(fn string) string {
		if s.postgis == "" {
			return fn
		}
		return pgx.Identifier{s.postgis}.Sanitize() + "." + fn
	}
	sd := strconv.Itoa(seed)
	var h string
	switch {
	case typedHash[c.Base] != "":
		h = fmt.Sprintf("%s(%s, %s)", typedHash[c.Base], id, sd)
	case c.Base == "timestamptz":
		// The instant, read in the session's UTC: exact, and independent of the servers' TimeZone.
		h = fmt.Sprintf("timestamp_hash_extended(%s::timestamp, %s)", id, sd)
	case c.Base == "bool":
		h = fmt.Sprintf("hashint4extended(%s::int, %s)", id, sd)
	case c.Base == "bytea":
		h = fmt.Sprintf("hash_array_extended(ARRAY[%s], %s)", id, sd)
	case c.Base == "geometry" && s.postgis != "":
		// EWKB in little-endian byte order: exact coordinates and the SRID, whatever the
		// server's native byte order.
		h = fmt.Sprintf("hash_array_extended(ARRAY[%s(%s, 'NDR')], %s)", pgis("st_asewkb"), id, sd)
	case c.Base == "geography" && s.postgis != "":
		h = fmt.Sprintf("hash_array_extended(ARRAY[%s(%s::%s, 'NDR')], %s)", pgis("st_asewkb"), id, pgis("geometry"), sd)
	case c.Elem != "" && c.ElemKind == "b" && arrayElemOK[c.Elem]:
		h = fmt.Sprintf("hash_array_extended(%s, %s)", id, sd)
	default:
		// Everything else by its text form (json, enums, composites, ranges, dates, ...), which
		// the session settings make deterministic.
		h = fmt.Sprintf("hashtextextended(%s::text, %s)", id, sd)
	}
	return fmt.Sprintf("coalesce(%s, %d)", h, nullHash(seed))
}

// nullHash is the hash standing for NULL in column seed: fixed, arbitrary, different per column.
func nullHash(seed int) int64 {
	x := uint64(seed+1) * 0x9E3779B97F4A7C15
	x ^= x >> 31
	return int64(x * 0xBF58476D1CE4E5B9)
}

// rowHashExpr combines the column hashes with XOR: cheap, and any changed column changes it.
func rowHashExpr(s *side, t *tableInfo, cols []string) string {
	if len(cols) == 0 {
		return "0::bigint"
	}
	parts := make([]string, 0, len(cols))
	for i, name := range cols {
		c, _ := t.col(name)
		parts = append(parts, colHash(s, c, i+1))
	}
	return "(" + strings.Join(parts, " # ") + ")"
}

func colHashesExpr(s *side, t *tableInfo, cols []string) string {
	parts := make([]string, 0, len(cols))
	for i, name := range cols {
		c, _ := t.col(name)
		parts = append(parts, colHash(s, c, i+1))
	}
	return "ARRAY[" + strings.Join(parts, ", ") + "]::bigint[]"
}
