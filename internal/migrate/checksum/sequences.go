package checksum

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// SequenceDiff is a sequence that would hand out a value already used, or fall behind the source.
type SequenceDiff struct {
	Sequence   string `json:"sequence"`
	Column     string `json:"column"`      // "schema.table.column" it feeds
	SourceNext *int64 `json:"source_next"` // value nextval() would return
	TargetNext *int64 `json:"target_next"`
	TargetMax  *int64 `json:"target_max"` // largest value in the column on the target
	Problem    string `json:"problem"`
}

func (d SequenceDiff) String() string {
	return fmt.Sprintf("sequence %s (%s): %s", d.Sequence, d.Column, d.Problem)
}

type seqState struct {
	column   string
	next     int64
	inc      int64
	colMax   *int64
	hasValue bool
	fix      string
}

// Sequences feeding a column: owned by it (serial, identity) or named in its DEFAULT
// nextval(...); with their next value. The column's max is read only for integer columns.
const seqQuery = `
WITH links AS (
  SELECT d.objid AS seq, d.refobjid AS tbl, d.refobjsubid AS col FROM pg_depend d
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a','i') AND d.refobjsubid > 0
  UNION
  SELECT d.refobjid, ad.adrelid, ad.adnum FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid
  WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
)
SELECT format('%I.%I', sn.nspname, s.relname), format('%I.%I', tn.nspname, t.relname), quote_ident(a.attname),
  ps.start_value, ps.increment_by, ps.last_value,
  format_type(a.atttypid, NULL) IN ('smallint','integer','bigint')
FROM links l
JOIN pg_class s ON s.oid = l.seq AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_sequences ps ON ps.schemaname = sn.nspname AND ps.sequencename = s.relname
JOIN pg_class t ON t.oid = l.tbl JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = l.col AND NOT a.attisdropped
WHERE t.relkind IN ('r','p')`

func loadSequences(ctx context.Context, s *side) (map[string]*seqState, error) {
	out := map[string]*seqState{}
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, seqQuery)
		if err != nil {
			return fmt.Errorf("list sequences: %w", err)
		}
		type item struct {
			seq, table, col string
			isInt           bool
			st              *seqState
		}
		var items []item
		for rows.Next() {
			var it item
			var start, inc int64
			var last *int64
			if err := rows.Scan(&it.seq, &it.table, &it.col, &start, &inc, &last, &it.isInt); err != nil {
				rows.Close()
				return fmt.Errorf("list sequences: %w", err)
			}
			st := &seqState{column: it.table + "." + it.col, inc: inc, hasValue: true,
				fix: fmt.Sprintf("SELECT setval('%s', max(%s)) FROM %s", it.seq, it.col, it.table)}
			if last == nil {
				st.next = start // never called (or not readable): nextval returns start
			} else {
				st.next = *last + inc
			}
			it.st = st
			items = append(items, it)
			out[it.seq+" "+st.column] = st
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list sequences: %w", err)
		}
		for _, it := range items {
			if !it.isInt {
				continue
			}
			q := fmt.Sprintf("SELECT max(%s)::bigint FROM %s", it.col, it.table)
			if it.st.inc < 0 {
				q = fmt.Sprintf("SELECT min(%s)::bigint FROM %s", it.col, it.table)
			}
			if err := c.QueryRow(ctx, q).Scan(&it.st.colMax); err != nil {
				return fmt.Errorf("read max of %s: %w", it.st.column, err)
			}
		}
		return nil
	})
	return out, err
}

// checkSequences reports target sequences whose next value is not beyond the column's largest
// value (the next insert would fail or reuse an id), or that are behind the source's.
func checkSequences(ctx context.Context, src, tgt *side) ([]SequenceDiff, error) {
	var seqs [2]map[string]*seqState
	err := both(ctx, src, tgt, func(ctx context.Context, s *side, i int) error {
		m, err := loadSequences(ctx, s)
		seqs[i] = m
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []SequenceDiff
	for key, t := range seqs[1] {
		name, _, _ := strings.Cut(key, " ")
		d := SequenceDiff{Sequence: name, Column: t.column, TargetNext: ptr(t.next), TargetMax: t.colMax}
		if s := seqs[0][key]; s != nil {
			d.SourceNext = ptr(s.next)
		}
		switch {
		case t.colMax != nil && t.inc > 0 && t.next <= *t.colMax:
			d.Problem = fmt.Sprintf("behind its column: next value %d but the column already holds %d (fix: %s)", t.next, *t.colMax, t.fix)
		case t.colMax != nil && t.inc < 0 && t.next >= *t.colMax:
			d.Problem = fmt.Sprintf("behind its column: next value %d but the column already holds %d", t.next, *t.colMax)
		case d.SourceNext != nil && t.inc > 0 && t.next < *d.SourceNext:
			d.Problem = fmt.Sprintf("behind the source: next value %d, source's %d (ids the source handed out would be reused)", t.next, *d.SourceNext)
		case d.SourceNext != nil && t.inc < 0 && t.next > *d.SourceNext:
			d.Problem = fmt.Sprintf("behind the source: next value %d, source's %d", t.next, *d.SourceNext)
		default:
			continue
		}
		out = append(out, d)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Sequence < out[b].Sequence })
	return out, nil
}

func ptr(v int64) *int64 { return &v }
