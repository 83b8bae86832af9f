package checksum

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// bound is a primary-key value (one text per key column); nil means open-ended.
type bound []string

// plan is how one table present on both sides is compared.
type plan struct {
	name   string
	t      [2]*tableInfo // source, target
	cols   []string      // columns compared: present on both sides, in source order
	keys   []string      // primary key columns (source's); empty: whole-table hash
	bounds []bound       // ascending split points; len(bounds)+1 ranges

	hash      [2]string // row hash expression per side
	colHashes [2]string // per-column hash array expression per side
	keyText   [2]string // "k1::text, k2::text"
	keyAlias  [2]string // "k1::text AS zops_k0, k2::text AS zops_k1"
	orderBy   [2]string // `k1 COLLATE "C", k2`
	keyTypes  [2][]string

	report *TableReport
	mu     sync.Mutex // guards report
}

func newPlan(src, tgt *side, s, t *tableInfo) *plan {
	p := &plan{name: s.display(), t: [2]*tableInfo{s, t}}
	for _, c := range s.Columns {
		if _, ok := t.col(c.Name); ok {
			p.cols = append(p.cols, c.Name)
		}
	}
	// A key is usable only when both sides have the same primary key; otherwise fall back.
	if len(s.Key) > 0 && strings.Join(s.Key, ",") == strings.Join(t.Key, ",") {
		p.keys = s.Key
	}
	for i, sd := range []*side{src, tgt} {
		ti := p.t[i]
		p.hash[i] = rowHashExpr(sd, ti, p.cols)
		p.colHashes[i] = colHashesExpr(sd, ti, p.cols)
		var kt, ka, ob []string
		var types []string
		for j, k := range p.keys {
			c, _ := ti.col(k)
			other, _ := p.t[1-i].col(k)
			id := pgx.Identifier{k}.Sanitize()
			kt = append(kt, id+"::text")
			ka = append(ka, fmt.Sprintf("%s::text AS zops_k%d", id, j))
			ob = append(ob, keyOrderExpr(id, c, c.Bytewise && other.Bytewise))
			types = append(types, c.Type)
		}
		p.keyText[i] = strings.Join(kt, ", ")
		p.keyAlias[i] = strings.Join(ka, ", ")
		p.orderBy[i] = strings.Join(ob, ", ")
		p.keyTypes[i] = types
	}
	p.report = &TableReport{Table: p.name, KeyColumns: p.keys, Columns: len(p.cols)}
	return p
}

// keyOrderExpr orders text-like keys bytewise (COLLATE "C") on both sides, so range bounds
// hold the same rows whatever collations and C-library versions the servers use. When both
// sides' columns already sort bytewise (collation C or POSIX) the column is used as it is, so
// range scans can use its index (an explicit COLLATE "C" would not match the index).
func keyOrderExpr(id string, c column, bothBytewise bool) string {
	if c.Collatable && !bothBytewise {
		return id + ` COLLATE "C"`
	}
	return id
}

func isIntType(base string) bool { return base == "int2" || base == "int4" || base == "int8" }

// cond renders "lo <= key < hi" for side i, with parameters numbered from argBase+1.
func (p *plan) cond(i int, lo, hi bound) (string, []any) {
	if len(p.keys) == 0 {
		return "true", nil
	}
	var parts []string
	var args []any
	lhs := p.orderBy[i]
	if len(p.keys) > 1 {
		lhs = "ROW(" + lhs + ")"
	}
	rhs := func(b bound) string {
		ps := make([]string, len(b))
		for j, v := range b {
			args = append(args, v)
			ps[j] = fmt.Sprintf("$%d::text::%s", len(args), p.keyTypes[i][j])
		}
		if len(ps) > 1 {
			return "ROW(" + strings.Join(ps, ", ") + ")"
		}
		return ps[0]
	}
	if lo != nil {
		parts = append(parts, lhs+" >= "+rhs(lo))
	}
	if hi != nil {
		parts = append(parts, lhs+" < "+rhs(hi))
	}
	if len(parts) == 0 {
		return "true", nil
	}
	return strings.Join(parts, " AND "), args
}

// rangeSum is the count and hash sum of one key range on one side.
type rangeSum struct {
	Count int64
	Sum   string
}

func (p *plan) sum(ctx context.Context, s *side, i int, lo, hi bound) (rangeSum, error) {
	where, args := p.cond(i, lo, hi)
	q := fmt.Sprintf("SELECT count(*), coalesce(sum(%s), 0)::text FROM %s WHERE %s", p.hash[i], p.t[i].qualified(), where)
	var r rangeSum
	err := s.with(ctx, func(c *pgx.Conn) error {
		if err := c.QueryRow(ctx, q, args...).Scan(&r.Count, &r.Sum); err != nil {
			return fmt.Errorf("checksum %s: %w", p.name, err)
		}
		return nil
	})
	return r, err
}

func (p *plan) sums(ctx context.Context, src, tgt *side, lo, hi bound) ([2]rangeSum, error) {
	var out [2]rangeSum
	err := both(ctx, src, tgt, func(ctx context.Context, s *side, i int) error {
		r, err := p.sum(ctx, s, i, lo, hi)
		out[i] = r
		return err
	})
	return out, err
}

// scanAll says whether the first-level ranges are computed in one scan per side instead of
// one query per range: for a single collatable key compared in COLLATE "C" order, which the
// key's index does not provide, so each range query would read the whole table.
func (p *plan) scanAll() bool {
	if len(p.keys) != 1 || len(p.bounds) == 0 {
		return false
	}
	return strings.Contains(p.orderBy[0], `COLLATE "C"`) || strings.Contains(p.orderBy[1], `COLLATE "C"`)
}

// scanSums computes every first-level range's count and sum in one pass per side, assigning
// rows to ranges with width_bucket under COLLATE "C" (bucket k is range k of p.ranges()).
func (p *plan) scanSums(ctx context.Context, src, tgt *side) ([][2]rangeSum, error) {
	n := len(p.bounds) + 1
	out := make([][2]rangeSum, n)
	for k := range out {
		out[k] = [2]rangeSum{{Sum: "0"}, {Sum: "0"}}
	}
	arr := make([]string, len(p.bounds))
	for k, b := range p.bounds {
		arr[k] = b[0]
	}
	err := both(ctx, src, tgt, func(ctx context.Context, s *side, i int) error {
		q := fmt.Sprintf("SELECT width_bucket(%s, $1::text[]::%s[]), count(*), coalesce(sum(%s), 0)::text FROM %s GROUP BY 1",
			p.orderBy[i], p.keyTypes[i][0], p.hash[i], p.t[i].qualified())
		return s.with(ctx, func(c *pgx.Conn) error {
			rows, err := c.Query(ctx, q, arr)
			if err != nil {
				return fmt.Errorf("checksum %s: %w", p.name, err)
			}
			defer rows.Close()
			for rows.Next() {
				var b int
				var r rangeSum
				if err := rows.Scan(&b, &r.Count, &r.Sum); err != nil {
					return fmt.Errorf("checksum %s: %w", p.name, err)
				}
				if b < 0 || b >= n {
					return fmt.Errorf("checksum %s: bucket %d out of range", p.name, b)
				}
				out[b][i] = r
			}
			return rows.Err()
		})
	})
	return out, err
}

// planRanges chooses the split points of the table's key space. Integer keys are split
// arithmetically between the smallest and largest key of both sides (no scan); other keys are
// split at quantiles of a page sample of the larger side.
func (p *plan) planRanges(ctx context.Context, src, tgt *side, o Options) error {
	if len(p.keys) == 0 {
		return nil
	}
	size := max(p.t[0].Size, p.t[1].Size)
	n := int((size + o.RangeBytes - 1) / o.RangeBytes)
	if n <= 1 {
		return nil
	}
	n = min(n, 100000)
	k0, _ := p.t[0].col(p.keys[0])
	k1, _ := p.t[1].col(p.keys[0])
	if len(p.keys) == 1 && isIntType(k0.Base) && isIntType(k1.Base) {
		var mm [2][2]*string
		err := both(ctx, src, tgt, func(ctx context.Context, s *side, i int) error {
			id := pgx.Identifier{p.keys[0]}.Sanitize()
			q := fmt.Sprintf("SELECT min(%s)::text, max(%s)::text FROM %s", id, id, p.t[i].qualified())
			return s.with(ctx, func(c *pgx.Conn) error { return c.QueryRow(ctx, q).Scan(&mm[i][0], &mm[i][1]) })
		})
		if err != nil {
			return fmt.Errorf("key range of %s: %w", p.name, err)
		}
		var lo, hi *big.Int
		for i := range 2 {
			if mm[i][0] == nil {
				continue
			}
			a, _ := new(big.Int).SetString(*mm[i][0], 10)
			b, _ := new(big.Int).SetString(*mm[i][1], 10)
			if lo == nil || a.Cmp(lo) < 0 {
				lo = a
			}
			if hi == nil || b.Cmp(hi) > 0 {
				hi = b
			}
		}
		if lo == nil {
			return nil
		}
		span := new(big.Int).Sub(hi, lo)
		span.Add(span, big.NewInt(1))
		if span.Cmp(big.NewInt(int64(n))) < 0 {
			n = int(span.Int64())
		}
		var prev string
		for j := 1; j < n; j++ {
			off := new(big.Int).Mul(span, big.NewInt(int64(j)))
			off.Quo(off, big.NewInt(int64(n)))
			v := new(big.Int).Add(lo, off).String()
			if v != prev {
				p.bounds = append(p.bounds, bound{v})
				prev = v
			}
		}
		return nil
	}
	// Sample about 8 pages per range from the larger side and take evenly spaced keys.
	i, s := 0, src
	if p.t[1].Size > p.t[0].Size {
		i, s = 1, tgt
	}
	pages := float64(size) / 8192
	pct := min(100, 100*float64(n*8)/pages)
	q := fmt.Sprintf("SELECT %s FROM %s TABLESAMPLE SYSTEM (%g) REPEATABLE (7) ORDER BY %s",
		p.keyText[i], p.t[i].qualified(), pct, p.orderBy[i])
	var sample []bound
	err := s.with(ctx, func(c *pgx.Conn) error {
		var err error
		sample, err = collectBounds(ctx, c, q, len(p.keys))
		return err
	})
	if err != nil {
		return fmt.Errorf("sample keys of %s: %w", p.name, err)
	}
	for j := 1; j < n; j++ {
		idx := j * len(sample) / n
		if idx <= 0 || idx >= len(sample) {
			continue
		}
		b := sample[idx]
		if len(p.bounds) > 0 && equalBound(p.bounds[len(p.bounds)-1], b) {
			continue
		}
		p.bounds = append(p.bounds, b)
	}
	return nil
}

func equalBound(a, b bound) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func collectBounds(ctx context.Context, c *pgx.Conn, q string, nkeys int, args ...any) ([]bound, error) {
	rows, err := c.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []bound
	for rows.Next() {
		vals := make([]*string, nkeys)
		ptrs := make([]any, nkeys)
		for j := range vals {
			ptrs[j] = &vals[j]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		b := make(bound, nkeys)
		for j, v := range vals {
			if v != nil {
				b[j] = *v
			}
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// ranges returns the [lo, hi) pairs of the plan.
func (p *plan) ranges() [][2]bound {
	out := make([][2]bound, 0, len(p.bounds)+1)
	var lo bound
	for _, b := range p.bounds {
		out = append(out, [2]bound{lo, b})
		lo = b
	}
	return append(out, [2]bound{lo, nil})
}

// bisect narrows a mismatching range down to rows: ranges small enough are fetched as
// (key, row hash, column hashes); larger ones are cut into Fanout pieces at quantiles of the
// side holding more rows, and only the pieces whose sums differ are followed.
func (p *plan) bisect(ctx context.Context, src, tgt *side, o Options, lo, hi bound, sums [2]rangeSum, depth int) error {
	if p.full(o) {
		return nil
	}
	n := max(sums[0].Count, sums[1].Count)
	if n <= int64(o.LeafRows) || depth >= 24 {
		return p.leaf(ctx, src, tgt, o, lo, hi)
	}
	i, s := 0, src
	if sums[1].Count > sums[0].Count {
		i, s = 1, tgt
	}
	step := (n + int64(o.Fanout) - 1) / int64(o.Fanout)
	where, args := p.cond(i, lo, hi)
	args = append(args, step)
	q := fmt.Sprintf("SELECT %s FROM (SELECT %s, row_number() OVER (ORDER BY %s) AS zops_rn FROM %s WHERE %s) s WHERE zops_rn %% $%d = 0",
		strings.Join(keyAliases(len(p.keys)), ", "), p.keyAlias[i], p.orderBy[i], p.t[i].qualified(), where, len(args))
	var cuts []bound
	err := s.with(ctx, func(c *pgx.Conn) error {
		var err error
		cuts, err = collectBounds(ctx, c, q, len(p.keys), args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("split range of %s: %w", p.name, err)
	}
	if len(cuts) == 0 {
		return p.leaf(ctx, src, tgt, o, lo, hi)
	}
	pieces := make([][2]bound, 0, len(cuts)+1)
	prev := lo
	for _, c := range cuts {
		pieces = append(pieces, [2]bound{prev, c})
		prev = c
	}
	pieces = append(pieces, [2]bound{prev, hi})
	for _, pc := range pieces {
		ss, err := p.sums(ctx, src, tgt, pc[0], pc[1])
		if err != nil {
			return err
		}
		if ss[0] != ss[1] {
			if err := p.bisect(ctx, src, tgt, o, pc[0], pc[1], ss, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func keyAliases(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("zops_k%d", i)
	}
	return out
}

type leafRow struct {
	key    bound
	hash   int64
	colsum []int64
}

func (p *plan) fetchLeaf(ctx context.Context, s *side, i int, lo, hi bound) ([]leafRow, error) {
	where, args := p.cond(i, lo, hi)
	q := fmt.Sprintf("SELECT %s, %s, %s FROM %s WHERE %s ORDER BY %s",
		p.keyText[i], p.hash[i], p.colHashes[i], p.t[i].qualified(), where, p.orderBy[i])
	var out []leafRow
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		nk := len(p.keys)
		for rows.Next() {
			vals := make([]*string, nk)
			var r leafRow
			ptrs := make([]any, 0, nk+2)
			for j := range vals {
				ptrs = append(ptrs, &vals[j])
			}
			ptrs = append(ptrs, &r.hash, &r.colsum)
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			r.key = make(bound, nk)
			for j, v := range vals {
				if v != nil {
					r.key[j] = *v
				}
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("fetch rows of %s: %w", p.name, err)
	}
	return out, nil
}

func (p *plan) leaf(ctx context.Context, src, tgt *side, o Options, lo, hi bound) error {
	var rows [2][]leafRow
	err := both(ctx, src, tgt, func(ctx context.Context, s *side, i int) error {
		r, err := p.fetchLeaf(ctx, s, i, lo, hi)
		rows[i] = r
		return err
	})
	if err != nil {
		return err
	}
	key := func(b bound) string { return strings.Join(b, "\x00") }
	tgtByKey := make(map[string]leafRow, len(rows[1]))
	for _, r := range rows[1] {
		tgtByKey[key(r.key)] = r
	}
	seen := make(map[string]bool, len(rows[0]))
	p.mu.Lock()
	defer p.mu.Unlock()
	tr := p.report
	for _, r := range rows[0] {
		k := key(r.key)
		seen[k] = true
		t, ok := tgtByKey[k]
		switch {
		case !ok:
			tr.MissingCount++
			if len(tr.Missing) < o.MaxRows {
				tr.Missing = append(tr.Missing, RowDiff{Key: r.key})
			}
		case t.hash != r.hash:
			tr.ChangedCount++
			if len(tr.Changed) < o.MaxRows {
				var cols []string
				for j := range p.cols {
					if j < len(r.colsum) && j < len(t.colsum) && r.colsum[j] != t.colsum[j] {
						cols = append(cols, p.cols[j])
					}
				}
				tr.Changed = append(tr.Changed, RowDiff{Key: r.key, Columns: cols})
			}
		}
	}
	for _, r := range rows[1] {
		if seen[key(r.key)] {
			continue
		}
		tr.ExtraCount++
		if len(tr.Extra) < o.MaxRows {
			tr.Extra = append(tr.Extra, RowDiff{Key: r.key})
		}
	}
	return nil
}

// full reports whether every list of the table already holds MaxRows examples, so further
// bisection could only raise counts (the report then says the counts are lower bounds).
func (p *plan) full(o Options) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	tr := p.report
	if len(tr.Missing) >= o.MaxRows && len(tr.Extra) >= o.MaxRows && len(tr.Changed) >= o.MaxRows {
		tr.Truncated = true
		return true
	}
	if tr.MissingCount+tr.ExtraCount+tr.ChangedCount >= int64(o.MaxRows)*50 {
		tr.Truncated = true
		return true
	}
	return false
}

// wholeTable compares a table without a usable primary key as a multiset of row hashes.
func (p *plan) wholeTable(ctx context.Context, src, tgt *side, o Options) error {
	sums, err := p.sums(ctx, src, tgt, nil, nil)
	if err != nil {
		return err
	}
	tr := p.report
	tr.SourceRows, tr.TargetRows = sums[0].Count, sums[1].Count
	tr.Ranges = 1
	if sums[0] == sums[1] {
		return nil
	}
	tr.MismatchedRanges = 1
	if max(sums[0].Count, sums[1].Count) > int64(o.WholeTableDiffRows) {
		tr.Truncated = true
		return nil
	}
	// Only hashes cross the network: count each distinct row hash on both sides.
	var counts [2]map[int64]int64
	err = both(ctx, src, tgt, func(ctx context.Context, s *side, i int) error {
		q := fmt.Sprintf("SELECT h, count(*) FROM (SELECT %s AS h FROM %s) s GROUP BY h", p.hash[i], p.t[i].qualified())
		return s.with(ctx, func(c *pgx.Conn) error {
			rows, err := c.Query(ctx, q)
			if err != nil {
				return err
			}
			defer rows.Close()
			m := map[int64]int64{}
			for rows.Next() {
				var h, n int64
				if err := rows.Scan(&h, &n); err != nil {
					return err
				}
				m[h] = n
			}
			counts[i] = m
			return rows.Err()
		})
	})
	if err != nil {
		return fmt.Errorf("row hashes of %s: %w", p.name, err)
	}
	var hs []int64
	for h := range counts[0] {
		hs = append(hs, h)
	}
	for h := range counts[1] {
		if _, ok := counts[0][h]; !ok {
			hs = append(hs, h)
		}
	}
	sort.Slice(hs, func(a, b int) bool { return hs[a] < hs[b] })
	for _, h := range hs {
		d := counts[0][h] - counts[1][h]
		label := bound{fmt.Sprintf("row hash %016x", uint64(h))}
		for ; d > 0; d-- {
			tr.MissingCount++
			if len(tr.Missing) < o.MaxRows {
				tr.Missing = append(tr.Missing, RowDiff{Key: label})
			}
		}
		for ; d < 0; d++ {
			tr.ExtraCount++
			if len(tr.Extra) < o.MaxRows {
				tr.Extra = append(tr.Extra, RowDiff{Key: label})
			}
		}
	}
	return nil
}
