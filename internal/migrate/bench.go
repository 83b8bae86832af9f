package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shtetl/zmanim-ops/internal/benchkit"
	"github.com/shtetl/zmanim-ops/internal/migrate/checksum"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
)

// BenchOptions configures the verify benchmark.
type BenchOptions struct {
	// ServerURL is a superuser URL of the PostgreSQL + PostGIS server that holds the two bench
	// databases (zops_bench_verify_src and zops_bench_verify_tgt, rebuilt on every run).
	ServerURL string
	Rows      int // default 1,000,000
	Runs      int // timed runs per method, median reported (default 3)
	Parallel  int // connections per side for ours and md5seg (default 4)
	Keep      bool
	Out       io.Writer
}

// BenchResult holds median wall times in seconds, each covering both databases.
type BenchResult struct {
	Rows                       int
	Ours, Naive, MD5Seg, OneCh float64
}

const benchSchema = `
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE cities (
  id bigint PRIMARY KEY,
  name text NOT NULL,
  country char(2) NOT NULL,
  population integer NOT NULL,
  elevation double precision,
  timezone text NOT NULL,
  geom geometry(Point, 4326) NOT NULL
);`

// benchData fills cities deterministically; the sizes match a GeoNames-like table (~130 MB).
const benchData = `
WITH seed AS (SELECT setseed(0.25))
INSERT INTO cities
SELECT g, 'City ' || md5(g::text), (ARRAY['IL','US','FR','GB','DE','RU','BR','IN'])[1 + g % 8],
  (random() * 1e7)::int, round((random() * 4000 - 200)::numeric, 1)::float8,
  (ARRAY['Asia/Jerusalem','America/New_York','Europe/Paris','Europe/London'])[1 + g % 4],
  ST_SetSRID(ST_MakePoint(random() * 360 - 180, random() * 180 - 90), 4326)
FROM seed, generate_series(1, $1::int) g;`

// Bench builds two identical databases with the cities table and times, in one run: our
// verify; the naive baseline (COPY ... ORDER BY id TO STDOUT | sha256 on each side, in
// parallel); a data-diff-style segment checksum (sum of 60-bit md5 per key segment, same
// segments and parallelism as ours); and our verify finding one changed row.
func Bench(ctx context.Context, o BenchOptions) (BenchResult, error) {
	if o.Rows <= 0 {
		o.Rows = 1_000_000
	}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	res := BenchResult{Rows: o.Rows}
	super, err := pgtool.ParseURL(o.ServerURL)
	if err != nil {
		return res, fmt.Errorf("bench server URL: %w", err)
	}
	srcC, tgtC := super.WithDatabase("zops_bench_verify_src"), super.WithDatabase("zops_bench_verify_tgt")
	src, tgt := srcC.URL(), tgtC.URL()
	fmt.Fprintf(o.Out, "bench: server %s, %d rows, %d runs per method, %d connections per side\n", super.Redacted(), o.Rows, o.Runs, o.Parallel)

	start := time.Now()
	if err := buildBenchDBs(ctx, super, o.Rows); err != nil {
		return res, err
	}
	if !o.Keep {
		defer func() {
			c, err := pgx.Connect(context.Background(), super.URL())
			if err == nil {
				_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS zops_bench_verify_src WITH (FORCE)")
				_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS zops_bench_verify_tgt WITH (FORCE)")
				c.Close(context.Background())
			}
		}()
	}
	fmt.Fprintf(o.Out, "bench: built both databases in %.1fs\n", time.Since(start).Seconds())

	// Warm the caches of both databases the same way for every method.
	for _, u := range []string{src, tgt} {
		if err := execOn(ctx, u, "SELECT count(*) FROM cities WHERE name IS NOT NULL"); err != nil {
			return res, err
		}
	}
	copts := checksum.Options{Parallel: o.Parallel}
	ours := func() (float64, error) {
		t := time.Now()
		rep, err := checksum.Verify(ctx, src, tgt, copts)
		if err != nil {
			return 0, err
		}
		if !rep.Identical || rep.Tables[0].SourceRows != int64(o.Rows) {
			return 0, fmt.Errorf("bench: our verify says the identical databases differ")
		}
		return time.Since(t).Seconds(), nil
	}
	naive := func() (float64, error) {
		t := time.Now()
		var sums [2]string
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, u := range []string{src, tgt} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sums[i], errs[i] = copySHA256(ctx, u)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return 0, err
		}
		if sums[0] != sums[1] {
			return 0, fmt.Errorf("bench: naive digests differ on identical databases")
		}
		return time.Since(t).Seconds(), nil
	}
	md5seg := func() (float64, error) {
		t := time.Now()
		same, err := md5Segments(ctx, src, tgt, o.Rows, o.Parallel)
		if err != nil {
			return 0, err
		}
		if !same {
			return 0, fmt.Errorf("bench: md5 segment checksums differ on identical databases")
		}
		return time.Since(t).Seconds(), nil
	}
	changedID := o.Rows/2 + 17
	onechange := func() (float64, error) {
		if err := execOn(ctx, tgt, "UPDATE cities SET name = name || '!' WHERE id = $1", changedID); err != nil {
			return 0, err
		}
		t := time.Now()
		rep, err := checksum.Verify(ctx, src, tgt, copts)
		el := time.Since(t).Seconds()
		if rerr := execOn(ctx, tgt, "UPDATE cities SET name = left(name, -1) WHERE id = $1", changedID); rerr != nil {
			return 0, rerr
		}
		if err != nil {
			return 0, err
		}
		tr := rep.Tables[0]
		if rep.Identical || tr.ChangedCount != 1 || len(tr.Changed) != 1 || tr.Changed[0].Key[0] != strconv.Itoa(changedID) {
			return 0, fmt.Errorf("bench: verify did not find exactly the changed row %d: %+v", changedID, tr)
		}
		return el, nil
	}
	timed := func(f func() (float64, error)) func(context.Context, int) (float64, error) {
		return func(context.Context, int) (float64, error) { return f() }
	}
	sides := []benchkit.Side{{Name: "ours", Run: timed(ours)}, {Name: "naive", Run: timed(naive)}, {Name: "md5seg", Run: timed(md5seg)}, {Name: "onechange", Run: timed(onechange)}}
	times, err := benchkit.Interleave(ctx, o.Runs, sides, func(r int, name string, s float64) {
		fmt.Fprintf(o.Out, "bench: run %d %-9s %.3fs\n", r+1, name, s)
	})
	if err != nil {
		return res, err
	}
	res.Ours, res.Naive, res.MD5Seg, res.OneCh = benchkit.Median(times[0]), benchkit.Median(times[1]), benchkit.Median(times[2]), benchkit.Median(times[3])
	fmt.Fprintf(o.Out, "bench: ours/naive=%.2f (goal <= 1.2) md5seg/ours=%.2f (goal >= 1.5) onechange/ours=%.2f (goal <= 1.3)\n",
		res.Ours/res.Naive, res.MD5Seg/res.Ours, res.OneCh/res.Ours)
	return res, nil
}

// Line is the benchmark's last line.
func (r BenchResult) Line() string {
	return benchkit.Line("verify", benchkit.Int("rows", r.Rows), benchkit.Float("ours_s", r.Ours, 3), benchkit.Float("naive_s", r.Naive, 3),
		benchkit.Float("md5seg_s", r.MD5Seg, 3), benchkit.Float("onechange_s", r.OneCh, 3))
}

func execOn(ctx context.Context, url, sql string, args ...any) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect %s: %w", pgtool.MustParse(url).Redacted(), err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("%.60s: %w", sql, err)
	}
	return nil
}

func buildBenchDBs(ctx context.Context, super pgtool.Conn, rows int) error {
	c, err := pgx.Connect(ctx, super.URL())
	if err != nil {
		return fmt.Errorf("connect to bench server %s: %w (start the twin with `go tool mage twin:up`, or set ZOPS_BENCH_PG_URL to a PostgreSQL + PostGIS superuser URL)", super.Redacted(), err)
	}
	defer c.Close(ctx)
	for _, q := range []string{
		"DROP DATABASE IF EXISTS zops_bench_verify_src WITH (FORCE)",
		"DROP DATABASE IF EXISTS zops_bench_verify_tgt WITH (FORCE)",
		"CREATE DATABASE zops_bench_verify_src TEMPLATE template0 ENCODING 'UTF8'",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("bench setup: %s: %w", q, err)
		}
	}
	src := super.WithDatabase("zops_bench_verify_src").URL()
	if err := execOn(ctx, src, benchSchema); err != nil {
		return err
	}
	if err := execOn(ctx, src, benchData, rows); err != nil {
		return err
	}
	if err := execOn(ctx, src, "VACUUM ANALYZE cities"); err != nil {
		return err
	}
	// The target is a file-level copy: identical content, as after a perfect restore.
	if _, err := c.Exec(ctx, "CREATE DATABASE zops_bench_verify_tgt TEMPLATE zops_bench_verify_src"); err != nil {
		return fmt.Errorf("bench setup: copy database: %w", err)
	}
	return nil
}

// copySHA256 is the naive baseline: the whole table in key order through the network into sha256.
func copySHA256(ctx context.Context, url string) (string, error) {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	h := sha256.New()
	if _, err := c.PgConn().CopyTo(ctx, h, "COPY (SELECT * FROM cities ORDER BY id) TO STDOUT"); err != nil {
		return "", fmt.Errorf("copy: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// md5Segments is the data-diff style checksum: per key segment, the sum of the low 60 bits of
// md5 over the concatenated columns, on both sides, with parallel connections.
func md5Segments(ctx context.Context, src, tgt string, rows, parallel int) (bool, error) {
	const q = `SELECT count(*), coalesce(sum(('x' || substring(md5(concat(id::text, name, country, population::text,
		elevation::text, timezone, geom::text)), 18))::bit(60)::bigint), 0)::text FROM cities WHERE id >= $1 AND id < $2`
	segments := 32
	step := (rows + segments) / segments
	type seg struct{ lo, hi int }
	results := [2][]string{make([]string, segments), make([]string, segments)}
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for side, u := range []string{src, tgt} {
		jobs := make(chan int)
		for w := 0; w < parallel; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := pgx.Connect(ctx, u)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					for range jobs {
					}
					return
				}
				defer c.Close(ctx)
				for i := range jobs {
					var n int64
					var sum string
					if err := c.QueryRow(ctx, q, i*step, (i+1)*step).Scan(&n, &sum); err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						continue
					}
					results[side][i] = strconv.FormatInt(n, 10) + "/" + sum
				}
			}()
		}
		go func() {
			for i := 0; i < segments; i++ {
				jobs <- i
			}
			close(jobs)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return false, fmt.Errorf("md5 segments: %w", firstErr)
	}
	for i := range results[0] {
		if results[0][i] != results[1][i] {
			return false, nil
		}
	}
	return true, nil
}

// BenchServerURL picks the server for the bench: explicit (ZOPS_BENCH_PG_URL, else
// ZOPS_TEST_PG_URL, read by the target), else the twin's PostgreSQL described by the
// configuration (twinURL, may be "").
func BenchServerURL(explicit, twinURL string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if twinURL != "" {
		return twinURL, nil
	}
	return "", fmt.Errorf("no PostgreSQL for the bench: set ZOPS_BENCH_PG_URL (superuser URL of a PostgreSQL + PostGIS server) or start the twin")
}
