package checksum

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// A Manifest records, per table, the row count and the sum of row hashes of one database as
// one snapshot saw it. The backup job computes it in the exported snapshot pg_dump reads, so
// a restore of that dump can be proved later without the live database, which has moved on
// (rows keep arriving in production). Row hashes are the ones Verify uses, over the columns
// listed per table in this order (a column's position seeds its hash).
type Manifest struct {
	Database string `json:"database"`
	// Snapshot is the exported snapshot id the sums were read in ("" = the connections' own).
	Snapshot string     `json:"snapshot"`
	Taken    time.Time  `json:"taken"`
	Tables   []TableSum `json:"tables"`
	// DumpSnapshot is filled by the caller: the restic snapshot of the dump read in Snapshot.
	DumpSnapshot string `json:"dump_snapshot,omitempty"`
}

// TableSum is one table's count and content checksum.
type TableSum struct {
	Table   string   `json:"table"`
	Columns []string `json:"columns"`
	Rows    int64    `json:"rows"`
	Sum     string   `json:"sum"`
}

// ManifestDiff is one table whose restore does not match its manifest entry.
type ManifestDiff struct {
	Table    string `json:"table"`
	Problem  string `json:"problem"`
	WantRows int64  `json:"want_rows"`
	GotRows  int64  `json:"got_rows"`
}

// ErrNoExport reports a server that refuses pg_export_snapshot (some managed services), so
// no other session (pg_dump) can read the snapshot the sums come from.
var ErrNoExport = errors.New("pg_export_snapshot refused")

// HeldSnapshot is a set of connections inside one exported snapshot, held open (the snapshot
// is importable only while its exporting transaction lives) so that pg_dump --snapshot=ID can
// read exactly what Sums hashes.
type HeldSnapshot struct {
	ID string
	s  *side
}

// HoldSnapshot opens parallel connections to url in one exported REPEATABLE READ snapshot.
// Close it after pg_dump has finished.
func HoldSnapshot(ctx context.Context, url string, parallel int) (*HeldSnapshot, error) {
	if parallel < 2 {
		parallel = 2 // openSide exports only when it shares the snapshot with another connection
	}
	s, err := openSide(ctx, "database", url, parallel, true)
	if err != nil {
		return nil, err
	}
	if s.snapshot == "" {
		s.close()
		return nil, fmt.Errorf("%s: %w: a dump cannot be tied to its checksums", s.redacted, ErrNoExport)
	}
	return &HeldSnapshot{ID: s.snapshot, s: s}, nil
}

// Sums computes the manifest of every user table in the held snapshot.
func (h *HeldSnapshot) Sums(ctx context.Context) (Manifest, error) {
	m, err := sums(ctx, h.s, nil)
	m.Snapshot = h.ID
	return m, err
}

// Close ends the snapshot's transactions.
func (h *HeldSnapshot) Close() { h.s.close() }

// SumDatabase computes the manifest of the database at url (its own snapshot per
// connection: meant for a restored copy no one writes to). With like set, each table is
// hashed over like's columns in like's order, so the sums are comparable with it.
func SumDatabase(ctx context.Context, url string, parallel int, like *Manifest) (Manifest, error) {
	if parallel < 1 {
		parallel = 1
	}
	s, err := openSide(ctx, "database", url, parallel, false)
	if err != nil {
		return Manifest{}, err
	}
	defer s.close()
	return sums(ctx, s, like)
}

func sums(ctx context.Context, s *side, like *Manifest) (Manifest, error) {
	m := Manifest{Taken: time.Now().UTC()}
	coll, err := databaseCollation(ctx, s)
	if err != nil {
		return m, err
	}
	s.defaultColl = coll
	if err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT current_database()").Scan(&m.Database)
	}); err != nil {
		return m, err
	}
	infos, order, err := loadTables(ctx, s)
	if err != nil {
		return m, err
	}
	wantCols := map[string][]string{}
	if like != nil {
		for _, t := range like.Tables {
			wantCols[t.Table] = t.Columns
		}
	}
	m.Tables = make([]TableSum, len(order))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, cap(s.conns))
	for i, name := range order {
		ti := infos[name]
		cols := make([]string, 0, len(ti.Columns))
		if wc, ok := wantCols[name]; ok {
			for _, c := range wc {
				if _, ok := ti.col(c); ok {
					cols = append(cols, c)
				}
			}
		} else {
			for _, c := range ti.Columns {
				cols = append(cols, c.Name)
			}
		}
		m.Tables[i] = TableSum{Table: name, Columns: cols}
		wg.Add(1)
		sem <- struct{}{}
		go func(ts *TableSum) {
			defer wg.Done()
			defer func() { <-sem }()
			q := fmt.Sprintf("SELECT count(*), coalesce(sum(%s), 0)::text FROM %s", rowHashExpr(s, ti, ts.Columns), ti.qualified())
			err := s.with(ctx, func(c *pgx.Conn) error {
				if err := c.QueryRow(ctx, q).Scan(&ts.Rows, &ts.Sum); err != nil {
					return fmt.Errorf("checksum %s: %w", ts.Table, err)
				}
				return nil
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}(&m.Tables[i])
	}
	wg.Wait()
	return m, errors.Join(errs...)
}

// Compare lists the tables of got (a restore) that differ from m (the manifest taken at
// dump time): missing or extra tables, missing columns, other row counts or content sums.
func (m Manifest) Compare(got Manifest) []ManifestDiff {
	have := map[string]TableSum{}
	for _, t := range got.Tables {
		have[t.Table] = t
	}
	var out []ManifestDiff
	for _, w := range m.Tables {
		g, ok := have[w.Table]
		delete(have, w.Table)
		switch {
		case !ok:
			out = append(out, ManifestDiff{Table: w.Table, Problem: "missing in the restore", WantRows: w.Rows})
		case strings.Join(w.Columns, ",") != strings.Join(g.Columns, ","):
			out = append(out, ManifestDiff{Table: w.Table, Problem: fmt.Sprintf("columns differ: dumped %v, restored %v", w.Columns, g.Columns), WantRows: w.Rows, GotRows: g.Rows})
		case w.Rows != g.Rows:
			out = append(out, ManifestDiff{Table: w.Table, Problem: "row count differs", WantRows: w.Rows, GotRows: g.Rows})
		case w.Sum != g.Sum:
			out = append(out, ManifestDiff{Table: w.Table, Problem: "content checksum differs (same row count)", WantRows: w.Rows, GotRows: g.Rows})
		}
	}
	extra := make([]string, 0, len(have))
	for n := range have {
		extra = append(extra, n)
	}
	sort.Strings(extra)
	for _, n := range extra {
		out = append(out, ManifestDiff{Table: n, Problem: "only in the restore", GotRows: have[n].Rows})
	}
	return out
}
