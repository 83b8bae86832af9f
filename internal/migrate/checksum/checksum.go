// Package checksum proves that two live PostgreSQL databases hold the same schema and data,
// without moving the data: each database hashes its own rows, and only hashes and keys cross
// the network.
//
// Data: every table with a primary key is cut into key ranges (integer keys arithmetically,
// other keys at sampled quantiles, text compared bytewise with COLLATE "C" so collations cannot
// move rows between ranges). Each side computes count(*) and the sum of 64-bit row hashes per
// range in its own snapshot, on several connections, source and target at the same time. A row
// hash XORs one seeded hash per column, computed by PostgreSQL's own extended hash function of
// the column's type (the one hash joins and hash partitioning use), on the binary value.
// Ranges whose sums differ are cut again and again until they are small enough to fetch as
// (key, row hash, per-column hashes), which names the missing, extra and changed rows and the
// changed columns. Values are hashed by meaning: -0 as 0, NaN as NaN, numerics without trailing
// zeros, geometries as little-endian EWKB with their SRID, timestamps in UTC, jsonb in its
// canonical form, NULL distinct from ”. Tables without a primary key are compared as a
// multiset of row hashes, with a warning.
//
// Schema: tables, columns and types, constraints, indexes, sequences, views, functions,
// triggers and extensions with their versions, as a readable diff. Sequences: each one's next
// value must lie beyond the largest value of the column it feeds.
//
// Verify is the library entry point; the backup drill reuses it to prove a restore.
package checksum

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a verification. The zero value means the defaults.
type Options struct {
	// Parallel is the number of connections per side (default 4).
	Parallel int
	// MaxRows is how many differing rows are listed per table and kind (default 20).
	MaxRows int
	// RangeBytes is the table size per first-level range (default 4 MiB).
	RangeBytes int64
	// LeafRows: ranges with at most this many rows are fetched as row hashes (default 2000).
	LeafRows int
	// Fanout is how many pieces a mismatching range is cut into (default 16).
	Fanout int
	// WholeTableDiffRows caps the size of tables without a primary key whose row hashes are
	// compared one by one when their sums differ (default 1,000,000).
	WholeTableDiffRows int
	// Tables limits the data comparison to these "schema.table" names (default all).
	Tables []string
	// SkipSchema and SkipData turn off one half of the comparison.
	SkipSchema bool
	SkipData   bool
	// NoSnapshot keeps each connection in its own snapshot instead of sharing an exported one.
	NoSnapshot bool
	// Progress, when set, receives one line per finished step, and a status line every
	// ProgressEvery (default 5s) while ranges are being checked.
	Progress      func(string)
	ProgressEvery time.Duration
}

func (o Options) withDefaults() Options {
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.MaxRows <= 0 {
		o.MaxRows = 20
	}
	if o.RangeBytes <= 0 {
		o.RangeBytes = 4 << 20
	}
	if o.LeafRows <= 0 {
		o.LeafRows = 2000
	}
	if o.Fanout < 2 {
		o.Fanout = 16
	}
	if o.ProgressEvery == 0 {
		o.ProgressEvery = 5 * time.Second
	}
	if o.WholeTableDiffRows <= 0 {
		o.WholeTableDiffRows = 1_000_000
	}
	return o
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

// Report is the result of a verification.
type Report struct {
	Source    string         `json:"source"` // redacted URLs
	Target    string         `json:"target"`
	Identical bool           `json:"identical"`
	Schema    []SchemaDiff   `json:"schema_diffs"`
	Tables    []*TableReport `json:"tables"`
	Sequences []SequenceDiff `json:"sequence_problems"`
	Warnings  []string       `json:"warnings"`
	Snapshot  bool           `json:"consistent_snapshot"` // both sides read one snapshot each
	Started   time.Time      `json:"started"`
	Seconds   float64        `json:"seconds"`
}

// TableReport is the data comparison of one table.
type TableReport struct {
	Table      string   `json:"table"`
	Method     string   `json:"method"` // "pk-ranges", "whole-table", or "skipped"
	KeyColumns []string `json:"key_columns,omitempty"`
	Columns    int      `json:"columns_compared"`
	SourceRows int64    `json:"source_rows"`
	TargetRows int64    `json:"target_rows"`
	Ranges     int      `json:"ranges"`
	// MismatchedRanges counts first-level ranges whose checksums differed.
	MismatchedRanges int       `json:"mismatched_ranges"`
	MissingCount     int64     `json:"missing_count"` // rows in source, not in target
	ExtraCount       int64     `json:"extra_count"`   // rows in target, not in source
	ChangedCount     int64     `json:"changed_count"` // same key, different content
	Missing          []RowDiff `json:"missing,omitempty"`
	Extra            []RowDiff `json:"extra,omitempty"`
	Changed          []RowDiff `json:"changed,omitempty"`
	// Truncated: the search stopped early; counts are lower bounds.
	Truncated bool    `json:"truncated,omitempty"`
	Note      string  `json:"note,omitempty"`
	Seconds   float64 `json:"seconds"`
}

// Identical reports whether the table's data matched.
func (t *TableReport) Identical() bool {
	return t.Method != MethodSkipped && t.MismatchedRanges == 0 && t.SourceRows == t.TargetRows &&
		t.MissingCount == 0 && t.ExtraCount == 0 && t.ChangedCount == 0
}

// Table methods.
const (
	MethodRanges  = "pk-ranges"
	MethodWhole   = "whole-table"
	MethodSkipped = "skipped"
)

// RowDiff names one differing row by its primary key (one text per key column).
type RowDiff struct {
	Key     []string `json:"key"`
	Columns []string `json:"columns,omitempty"` // for changed rows: which columns differ
}

// Verify compares the database at sourceURL with the one at targetURL. The error is for
// failures to compare (unreachable, authentication, SQL errors); differences are in the
// report, with Identical false.
func Verify(ctx context.Context, sourceURL, targetURL string, opts Options) (rep Report, err error) {
	o := opts.withDefaults()
	rep = Report{Started: time.Now().UTC()}
	start := time.Now()
	defer func() { rep.Seconds = time.Since(start).Seconds() }()

	var src, tgt *side
	var errS, errT error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); src, errS = openSide(ctx, "source", sourceURL, o.Parallel, !o.NoSnapshot) }()
	go func() { defer wg.Done(); tgt, errT = openSide(ctx, "target", targetURL, o.Parallel, !o.NoSnapshot) }()
	wg.Wait()
	if src != nil {
		defer src.close()
	}
	if tgt != nil {
		defer tgt.close()
	}
	if err := errors.Join(errS, errT); err != nil {
		return rep, err
	}
	rep.Source, rep.Target = src.redacted, tgt.redacted
	rep.Snapshot = src.snapshot != "" && tgt.snapshot != ""
	if !rep.Snapshot && o.Parallel > 1 {
		rep.Warnings = append(rep.Warnings, "no shared snapshot (pg_export_snapshot refused): results are exact only while no one writes")
	}

	var colls [2]string
	if err := both(ctx, src, tgt, func(ctx context.Context, s *side, i int) error {
		c, err := databaseCollation(ctx, s)
		colls[i], s.defaultColl = c, c
		return err
	}); err != nil {
		return rep, err
	}
	if colls[0] != colls[1] {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("database default collation differs: source %s, target %s; data is compared bytewise, but ORDER BY on text may return rows in another order", colls[0], colls[1]))
	}

	if !o.SkipSchema {
		var cats [2]catalog
		err := both(ctx, src, tgt, func(ctx context.Context, s *side, i int) error {
			c, err := loadCatalog(ctx, s)
			cats[i] = c
			return err
		})
		if err != nil {
			return rep, fmt.Errorf("compare schema: %w", err)
		}
		rep.Schema = diffCatalogs(cats[0], cats[1])
		o.progress("schema: %d objects compared, %d differences", countObjects(cats[0]), len(rep.Schema))
		seqs, err := checkSequences(ctx, src, tgt)
		if err != nil {
			return rep, fmt.Errorf("check sequences: %w", err)
		}
		rep.Sequences = seqs
		o.progress("sequences: %d problems", len(seqs))
	}

	if !o.SkipData {
		if err := compareData(ctx, src, tgt, o, &rep); err != nil {
			return rep, fmt.Errorf("compare data: %w", err)
		}
	}
	rep.Identical = len(rep.Schema) == 0 && len(rep.Sequences) == 0
	for _, t := range rep.Tables {
		if !t.Identical() {
			rep.Identical = false
		}
	}
	return rep, nil
}

// ticker prints status() every ProgressEvery while long work runs; call the result to stop it.
func (o Options) ticker(status func() string) func() {
	if o.Progress == nil || o.ProgressEvery <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(o.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				o.Progress(status())
			}
		}
	}()
	return func() { close(done) }
}

// databaseCollation describes the database's default collation. pg_database's columns for it
// changed across versions (datlocprovider 15, daticulocale 15-16, datlocale 17), hence to_jsonb.
func databaseCollation(ctx context.Context, s *side) (string, error) {
	var m map[string]any
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT to_jsonb(d) FROM pg_database d WHERE datname = current_database()`).Scan(&m)
	})
	if err != nil {
		return "", fmt.Errorf("read database collation: %w", err)
	}
	str := func(k string) string { v, _ := m[k].(string); return v }
	switch str("datlocprovider") {
	case "i":
		loc := str("datlocale")
		if loc == "" {
			loc = str("daticulocale")
		}
		return "icu:" + loc, nil
	case "b":
		return "builtin:" + str("datlocale"), nil
	}
	return "libc:" + str("datcollate"), nil
}

func countObjects(c catalog) int {
	n := 0
	for _, m := range c {
		n += len(m)
	}
	return n
}

func compareData(ctx context.Context, src, tgt *side, o Options, rep *Report) error {
	var infos [2]map[string]*tableInfo
	var orders [2][]string
	err := both(ctx, src, tgt, func(ctx context.Context, s *side, i int) error {
		t, ord, err := loadTables(ctx, s)
		infos[i], orders[i] = t, ord
		return err
	})
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, t := range o.Tables {
		want[t] = true
	}
	names := map[string]bool{}
	for _, n := range append(append([]string{}, orders[0]...), orders[1]...) {
		if len(want) == 0 || want[n] {
			names[n] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)

	var plans []*plan
	for _, n := range sorted {
		s, t := infos[0][n], infos[1][n]
		if s == nil || t == nil {
			note := "missing in target"
			if s == nil {
				note = "only in target"
			}
			rep.Tables = append(rep.Tables, &TableReport{Table: n, Method: MethodSkipped, Note: note})
			continue
		}
		p := newPlan(src, tgt, s, t)
		if len(p.cols) == 0 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: no column in common on the two sides; only row counts are compared", n))
		}
		if len(p.keys) == 0 {
			p.report.Method = MethodWhole
			why := "has no primary key"
			if len(s.Key) > 0 || len(t.Key) > 0 {
				why = "has different primary keys on the two sides"
			}
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s %s: compared as a whole-table multiset of row hashes; differing rows cannot be named by key", n, why))
		} else {
			p.report.Method = MethodRanges
		}
		plans = append(plans, p)
		rep.Tables = append(rep.Tables, p.report)
	}

	// Plan ranges, then hash every first-level range of every table through one worker pool
	// (Parallel workers, each holding one connection per side while it works).
	type job struct {
		p      *plan
		lo, hi bound
		scan   bool // all ranges of p in one scan per side (see plan.scanSums)
	}
	type mismatch struct {
		job
		sums [2]rangeSum
	}
	var (
		mu         sync.Mutex
		mismatches []mismatch
		firstErr   error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	started := map[*plan]time.Time{}
	runPool := func(jobs []job, fn func(job) error) {
		ch := make(chan job)
		var wg sync.WaitGroup
		for range o.Parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range ch {
					if err := fn(j); err != nil {
						fail(err)
					}
				}
			}()
		}
		for _, j := range jobs {
			ch <- j
		}
		close(ch)
		wg.Wait()
	}
	var planJobs []job
	for _, p := range plans {
		started[p] = time.Now()
		planJobs = append(planJobs, job{p: p})
	}
	runPool(planJobs, func(j job) error {
		if j.p.report.Method == MethodWhole {
			err := j.p.wholeTable(ctx, src, tgt, o)
			j.p.report.Seconds = time.Since(started[j.p]).Seconds()
			return err
		}
		return j.p.planRanges(ctx, src, tgt, o)
	})
	if firstErr != nil {
		return firstErr
	}
	var jobs []job
	for _, p := range plans {
		if p.report.Method != MethodRanges {
			continue
		}
		rs := p.ranges()
		p.report.Ranges = len(rs)
		if p.scanAll() {
			jobs = append(jobs, job{p: p, scan: true})
			continue
		}
		for _, r := range rs {
			jobs = append(jobs, job{p: p, lo: r[0], hi: r[1]})
		}
	}
	var done atomic.Int64
	stopTicker := o.ticker(func() string {
		return fmt.Sprintf("data: %d/%d checksum jobs done", done.Load(), len(jobs))
	})
	record := func(j job, sums [2]rangeSum) {
		j.p.mu.Lock()
		j.p.report.SourceRows += sums[0].Count
		j.p.report.TargetRows += sums[1].Count
		if sums[0] != sums[1] {
			j.p.report.MismatchedRanges++
		}
		j.p.mu.Unlock()
		if sums[0] != sums[1] {
			mu.Lock()
			mismatches = append(mismatches, mismatch{j, sums})
			mu.Unlock()
		}
	}
	runPool(jobs, func(j job) error {
		if j.scan {
			all, err := j.p.scanSums(ctx, src, tgt)
			done.Add(1)
			if err != nil {
				return err
			}
			for k, r := range j.p.ranges() {
				record(job{p: j.p, lo: r[0], hi: r[1]}, all[k])
			}
			return nil
		}
		sums, err := j.p.sums(ctx, src, tgt, j.lo, j.hi)
		done.Add(1)
		if err != nil {
			return err
		}
		record(j, sums)
		return nil
	})
	stopTicker()
	if firstErr != nil {
		return firstErr
	}
	if len(mismatches) > 0 {
		o.progress("data: %d ranges differ; narrowing them down to rows", len(mismatches))
	}
	// Bisect mismatching ranges, in key order per table so the first N rows listed are the
	// first in key order.
	sort.SliceStable(mismatches, func(a, b int) bool {
		if mismatches[a].p != mismatches[b].p {
			return mismatches[a].p.name < mismatches[b].p.name
		}
		return boundIndex(mismatches[a].p, mismatches[a].lo) < boundIndex(mismatches[b].p, mismatches[b].lo)
	})
	for _, m := range mismatches {
		if err := m.p.bisect(ctx, src, tgt, o, m.lo, m.hi, m.sums, 0); err != nil {
			return err
		}
	}
	for _, p := range plans {
		if p.report.Method == MethodRanges {
			p.report.Seconds = time.Since(started[p]).Seconds()
		}
		r := p.report
		state := "identical"
		if !r.Identical() {
			state = fmt.Sprintf("DIFFERENT (missing %d, extra %d, changed %d)", r.MissingCount, r.ExtraCount, r.ChangedCount)
		}
		o.progress("data: %s: %d/%d rows, %d ranges, %s", r.Table, r.SourceRows, r.TargetRows, r.Ranges, state)
	}
	return nil
}

func boundIndex(p *plan, lo bound) int {
	if lo == nil {
		return -1
	}
	for i, b := range p.bounds {
		if equalBound(b, lo) {
			return i
		}
	}
	return len(p.bounds)
}
