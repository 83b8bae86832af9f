package checksum

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
)

// Schema object kinds, in the order the diff is printed.
const (
	KindDatabase   = "database"
	KindExtension  = "extension"
	KindSchema     = "schema"
	KindTable      = "table"
	KindColumn     = "column"
	KindConstraint = "constraint"
	KindIndex      = "index"
	KindSequence   = "sequence"
	KindView       = "view"
	KindFunction   = "function"
	KindTrigger    = "trigger"
)

var kindOrder = []string{KindDatabase, KindExtension, KindSchema, KindTable, KindColumn, KindConstraint,
	KindIndex, KindSequence, KindView, KindFunction, KindTrigger}

// userObjects filters out system schemas and objects that belong to an extension (PostGIS's
// functions and spatial_ref_sys): those are compared through the extension's version.
const notSystemNS = `n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'`

func notExtMember(classid, objid string) string {
	return `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '` + classid + `'::regclass AND d.objid = ` + objid + ` AND d.deptype = 'e')`
}

// schemaQueries return (name, description) pairs per kind. The description is what is compared.
var schemaQueries = map[string]string{
	KindDatabase:  `SELECT 'encoding', pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()`,
	KindExtension: `SELECT extname, extversion FROM pg_extension`,
	KindSchema:    `SELECT n.nspname, '' FROM pg_namespace n WHERE ` + notSystemNS + ` AND ` + notExtMember("pg_namespace", "n.oid"),
	KindTable: `SELECT format('%I.%I', n.nspname, c.relname),
	    CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table' END
	    || CASE c.relpersistence WHEN 'u' THEN ' (unlogged)' ELSE '' END
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE c.relkind IN ('r','p','f') AND ` + notSystemNS + ` AND ` + notExtMember("pg_class", "c.oid"),
	KindColumn: `SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname),
	    format_type(a.atttypid, a.atttypmod)
	    || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
	    || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
	    || CASE WHEN a.attgenerated <> '' THEN ' generated as ' || pg_get_expr(ad.adbin, ad.adrelid) ELSE '' END
	    || CASE WHEN ad.adbin IS NOT NULL AND a.attgenerated = '' THEN ' default ' || pg_get_expr(ad.adbin, ad.adrelid) ELSE '' END
	    || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN ' collate ' || co.collname ELSE '' END
	  FROM pg_attribute a
	  JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	  JOIN pg_type t ON t.oid = a.atttypid
	  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	  LEFT JOIN pg_collation co ON co.oid = a.attcollation
	  WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','f','v','m')
	    AND ` + notSystemNS + ` AND ` + notExtMember("pg_class", "c.oid"),
	KindConstraint: `SELECT format('%I.%I %I', n.nspname, c.relname, con.conname), pg_get_constraintdef(con.oid)
	  FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE ` + notSystemNS + ` AND ` + notExtMember("pg_class", "c.oid"),
	KindIndex: `SELECT format('%I.%I', n.nspname, ic.relname),
	    regexp_replace(pg_get_indexdef(i.indexrelid), '^CREATE (UNIQUE )?INDEX \S+ ON ', 'CREATE \1INDEX ON ')
	  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
	  JOIN pg_namespace n ON n.oid = ic.relnamespace
	  WHERE ` + notSystemNS + ` AND ` + notExtMember("pg_class", "c.oid"),
	KindSequence: `SELECT format('%I.%I', s.schemaname, s.sequencename),
	    format('%s start %s increment %s min %s max %s cache %s%s', s.data_type::regtype, s.start_value, s.increment_by,
	      s.min_value, s.max_value, s.cache_size, CASE WHEN s.cycle THEN ' cycle' ELSE '' END)
	  FROM pg_sequences s JOIN pg_namespace n ON n.nspname = s.schemaname
	  JOIN pg_class c ON c.relname = s.sequencename AND c.relnamespace = n.oid
	  WHERE ` + notSystemNS + ` AND ` + notExtMember("pg_class", "c.oid"),
	KindView: `SELECT format('%I.%I', n.nspname, c.relname),
	    CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END || ' md5:' || md5(pg_get_viewdef(c.oid))
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE c.relkind IN ('v','m') AND ` + notSystemNS + ` AND ` + notExtMember("pg_class", "c.oid"),
	// pg_get_functiondef fails on aggregates: describe those by their kind and source instead.
	KindFunction: `SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
	    CASE WHEN p.prokind IN ('f','p') THEN 'returns ' || pg_get_function_result(p.oid) || ' md5:' || md5(pg_get_functiondef(p.oid))
	         ELSE p.prokind::text || ' md5:' || md5(coalesce(p.prosrc, '')) END
	  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	  WHERE ` + notSystemNS + ` AND ` + notExtMember("pg_proc", "p.oid"),
	KindTrigger: `SELECT format('%I.%I %I', n.nspname, c.relname, t.tgname),
	    regexp_replace(pg_get_triggerdef(t.oid), '^CREATE (CONSTRAINT )?TRIGGER \S+ ', 'CREATE \1TRIGGER ')
	    || CASE t.tgenabled WHEN 'D' THEN ' (disabled)' ELSE '' END
	  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE NOT t.tgisinternal AND ` + notSystemNS + ` AND ` + notExtMember("pg_class", "c.oid"),
}

// catalog is one side's schema: kind -> object name -> description.
type catalog map[string]map[string]string

func loadCatalog(ctx context.Context, s *side) (catalog, error) {
	cat := catalog{}
	err := s.with(ctx, func(c *pgx.Conn) error {
		for _, kind := range kindOrder {
			rows, err := c.Query(ctx, schemaQueries[kind])
			if err != nil {
				return fmt.Errorf("read %s catalog: %w", kind, err)
			}
			m := map[string]string{}
			for rows.Next() {
				var name, desc string
				if err := rows.Scan(&name, &desc); err != nil {
					rows.Close()
					return fmt.Errorf("read %s catalog: %w", kind, err)
				}
				m[name] = desc
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("read %s catalog: %w", kind, err)
			}
			cat[kind] = m
		}
		return nil
	})
	return cat, err
}

// SchemaDiff is one schema difference between source and target.
type SchemaDiff struct {
	Kind   string `json:"kind"`   // table, column, index, ...
	Object string `json:"object"` // qualified name
	Change string `json:"change"` // "missing" (in target), "extra" (only in target), "changed"
	Source string `json:"source,omitempty"`
	Target string `json:"target,omitempty"`
}

func (d SchemaDiff) String() string {
	switch d.Change {
	case ChangeMissing:
		return fmt.Sprintf("- %s %s missing in target (source: %s)", d.Kind, d.Object, orDash(d.Source))
	case ChangeExtra:
		return fmt.Sprintf("+ %s %s only in target (target: %s)", d.Kind, d.Object, orDash(d.Target))
	default:
		return fmt.Sprintf("~ %s %s differs: source %q, target %q", d.Kind, d.Object, d.Source, d.Target)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Change kinds.
const (
	ChangeMissing = "missing"
	ChangeExtra   = "extra"
	ChangeChanged = "changed"
)

// diffCatalogs lists differences, skipping columns/indexes/... of tables that are missing as a
// whole (the table line says it all).
func diffCatalogs(src, tgt catalog) []SchemaDiff {
	var out []SchemaDiff
	missingTables := map[string]bool{}
	for _, kind := range kindOrder {
		names := map[string]bool{}
		for n := range src[kind] {
			names[n] = true
		}
		for n := range tgt[kind] {
			names[n] = true
		}
		sorted := make([]string, 0, len(names))
		for n := range names {
			sorted = append(sorted, n)
		}
		sort.Strings(sorted)
		for _, n := range sorted {
			s, inS := src[kind][n]
			t, inT := tgt[kind][n]
			if kind == KindColumn || kind == KindConstraint || kind == KindTrigger {
				if missingTables[tableOf(kind, n)] {
					continue
				}
			}
			switch {
			case inS && !inT:
				out = append(out, SchemaDiff{Kind: kind, Object: n, Change: ChangeMissing, Source: s})
				if kind == KindTable {
					missingTables[n] = true
				}
			case !inS && inT:
				out = append(out, SchemaDiff{Kind: kind, Object: n, Change: ChangeExtra, Target: t})
				if kind == KindTable {
					missingTables[n] = true
				}
			case s != t:
				out = append(out, SchemaDiff{Kind: kind, Object: n, Change: ChangeChanged, Source: s, Target: t})
			}
		}
	}
	return out
}

// tableOf extracts "schema.table" from a column ("schema.table.col") or constraint/trigger
// ("schema.table name") object name; names are format('%I') output, so a dot or space inside
// double quotes belongs to the name.
func tableOf(kind, name string) string {
	inQuote := false
	lastDot, firstSpace := -1, -1
	for i, r := range name {
		switch {
		case r == '"':
			inQuote = !inQuote
		case r == '.' && !inQuote:
			lastDot = i
		case r == ' ' && !inQuote && firstSpace < 0:
			firstSpace = i
		}
	}
	if kind == KindColumn {
		if lastDot > 0 {
			return name[:lastDot]
		}
		return name
	}
	if firstSpace > 0 {
		return name[:firstSpace]
	}
	return name
}
