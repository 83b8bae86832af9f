package opts_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/ami/amitarget"
	"github.com/shtetl/zmanim-ops/internal/backup"
	"github.com/shtetl/zmanim-ops/internal/fresh"
	"github.com/shtetl/zmanim-ops/internal/loadtest"
	"github.com/shtetl/zmanim-ops/internal/migrate"
	"github.com/shtetl/zmanim-ops/internal/opts"
	"github.com/shtetl/zmanim-ops/internal/release"
	"github.com/shtetl/zmanim-ops/internal/site"
	"github.com/shtetl/zmanim-ops/internal/stacks"
	"github.com/shtetl/zmanim-ops/internal/testrun"
	"github.com/shtetl/zmanim-ops/internal/twin"
)

// readers are the option readers of every target's entry file, with a bad value for each
// kind of option they read and the booleans they read.
var readers = []struct {
	name  string
	read  func(*opts.Reader) any
	bad   map[string]string
	bools []string
}{
	{"release, release:rollback, release:history, bench:release", func(r *opts.Reader) any { return release.ReadOptions(r) },
		map[string]string{"ZOPS_LOCK_WAIT": "soon", "ZOPS_DRY_RUN": "maybe", "ZOPS_ALLOW_DIRTY": "maybe", "ZOPS_SMOKE": "maybe"},
		[]string{"ZOPS_DRY_RUN", "ZOPS_ALLOW_DIRTY", "ZOPS_SMOKE"}},
	{"site:sync, site:plan", func(r *opts.Reader) any { return site.ReadEnv(r) },
		map[string]string{"ZOPS_SITE_GRACE": "notaduration", "ZOPS_SITE_WAIT": "soon", "ZOPS_SITE_PATHS": "notanumber", "ZOPS_SITE_CONCURRENCY": "-2", "ZOPS_SITE_MAX_DELETE": "2", "ZOPS_SITE_INVALIDATE": "maybe"},
		[]string{"ZOPS_SITE_INVALIDATE"}},
	{"bench:site", func(r *opts.Reader) any { return site.ReadBenchOptions(r) },
		map[string]string{"ZOPS_SITE_CONCURRENCY": "notanumber", "ZOPS_BENCH_RUNS": "0"}, nil},
	{"edge:invalidate", func(r *opts.Reader) any { w, d := site.ReadInvalidateOptions(r); return []any{w, d} },
		map[string]string{"ZOPS_INVALIDATE_WAIT": "notaduration"}, nil},
	{"backup:*", func(r *opts.Reader) any { return backup.ReadOptions(r) },
		map[string]string{"ZOPS_BACKUP_TIMEOUT": "soon", "ZOPS_BACKUP_RETRY_LOCK": "notaduration", "ZOPS_BACKUP_PG_COMPRESS": "notanumber",
			"ZOPS_BACKUP_KEEP_DRILL": "maybe", "ZOPS_BACKUP_NOTIFY": "maybe"},
		[]string{"ZOPS_BACKUP_KEEP_DRILL"}},
	{"bench:backup", func(r *opts.Reader) any { return backup.ReadBenchOptions(r) },
		map[string]string{"ZOPS_BENCH_ROWS": "notanumber", "ZOPS_BENCH_RUNS": "0", "ZOPS_BENCH_KEEP": "maybe"},
		[]string{"ZOPS_BENCH_KEEP"}},
	{"migrate:*", func(r *opts.Reader) any { return migrate.ReadOptions(r) },
		map[string]string{"ZOPS_MIGRATE_JOBS": "notanumber", "ZOPS_MIGRATE_PARALLEL": "0", "ZOPS_MIGRATE_MAX_ROWS": "many", "ZOPS_MIGRATE_RANGE_MB": "x",
			"ZOPS_MIGRATE_KEEP_OWNERS": "maybe", "ZOPS_MIGRATE_ALLOW_NONEMPTY": "maybe", "ZOPS_MIGRATE_ALLOW_EXTENSION_MISMATCH": "maybe", "ZOPS_MIGRATE_NO_SNAPSHOT": "maybe"},
		[]string{"ZOPS_MIGRATE_KEEP_OWNERS", "ZOPS_MIGRATE_ALLOW_NONEMPTY", "ZOPS_MIGRATE_ALLOW_EXTENSION_MISMATCH", "ZOPS_MIGRATE_NO_SNAPSHOT"}},
	{"bench:verify", func(r *opts.Reader) any { return migrate.ReadBenchOptions(r) },
		map[string]string{"ZOPS_BENCH_ROWS": "notanumber", "ZOPS_BENCH_RUNS": "many", "ZOPS_MIGRATE_PARALLEL": "-1", "ZOPS_BENCH_KEEP": "maybe"},
		[]string{"ZOPS_BENCH_KEEP"}},
	{"loadtest", func(r *opts.Reader) any { return loadtest.ReadOptions(r) },
		map[string]string{"ZOPS_LOADTEST_DURATION": "forever", "ZOPS_LOADTEST_HOT_RATIO": "1.5", "ZOPS_LOADTEST_MAX_WORKERS": "notanumber", "ZOPS_LOADTEST_TWIN_HOOKS": "maybe", "ZOPS_LOADTEST_MIN_SAMPLES": "-1"},
		[]string{"ZOPS_LOADTEST_TWIN_HOOKS"}},
	{"bench:loadgen", func(r *opts.Reader) any { return loadtest.ReadBenchOptions(r) },
		map[string]string{"ZOPS_BENCH_ROUNDS": "0", "ZOPS_BENCH_ROUND": "-3s", "ZOPS_BENCH_RATE": "-5"}, nil},
	{"infra:*", func(r *opts.Reader) any { return stacks.ReadOptions(r) },
		map[string]string{"ZOPS_INFRA_SKIP_TESTS": "maybe", "ZOPS_DEPLOY_APPROVE": "maybe"},
		[]string{"ZOPS_INFRA_SKIP_TESTS", "ZOPS_DEPLOY_APPROVE"}},
	{"ami, ami:list, ami:prune", func(r *opts.Reader) any { return amitarget.ReadOptions(r) },
		map[string]string{"ZOPS_AMI_KEEP": "none", "ZOPS_DRY_RUN": "maybe"},
		[]string{"ZOPS_DRY_RUN"}},
	{"bench:fresh", func(r *opts.Reader) any { return fresh.ReadOptions(r) },
		map[string]string{"ZOPS_FRESH_KEEP": "maybe", "ZOPS_FRESH_ONLY": "everything"},
		[]string{"ZOPS_FRESH_KEEP"}},
	{"test", func(r *opts.Reader) any { return testrun.ReadOptions(r) },
		map[string]string{"ZOPS_TEST_TIMEOUT": "notaduration", "ZOPS_TEST_SHORT": "maybe", "ZOPS_TEST_VERBOSE": "maybe", "ZOPS_TWIN_BACKUPS": "maybe"},
		[]string{"ZOPS_TEST_SHORT", "ZOPS_TEST_VERBOSE", "ZOPS_TWIN_BACKUPS"}},
	{"twin:up", func(r *opts.Reader) any { return twin.ReadOptions(r) },
		map[string]string{"ZOPS_TWIN_BACKUPS": "maybe", "ZOPS_TWIN_API_ENV": "NOEQUALS"},
		[]string{"ZOPS_TWIN_BACKUPS"}},
	{"twin:status", func(r *opts.Reader) any { return twin.ReadStatusOptions(r) },
		map[string]string{"ZOPS_JSON": "maybe"}, []string{"ZOPS_JSON"}},
}

// TestEveryTargetRejectsBadValues feeds each reader its bad values at once and expects one
// error naming every variable.
func TestEveryTargetRejectsBadValues(t *testing.T) {
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			r := opts.FromMap(rd.bad)
			rd.read(r)
			err := r.Err()
			if err == nil {
				t.Fatalf("no error for %v", rd.bad)
			}
			for k, v := range rd.bad {
				if !strings.Contains(err.Error(), k+"=\""+v+"\"") {
					t.Errorf("the error does not name %s=%q:\n%v", k, v, err)
				}
			}
		})
	}
}

// TestBooleansHaveOneDialect checks that =true and =1 (and =false and =0) mean the same for
// every boolean option of every target.
func TestBooleansHaveOneDialect(t *testing.T) {
	for _, rd := range readers {
		for _, b := range rd.bools {
			for _, pair := range [][2]string{{"true", "1"}, {"yes", "1"}, {"on", "1"}, {"false", "0"}, {"no", "0"}, {"off", "0"}} {
				r1, r2 := opts.FromMap(map[string]string{b: pair[0]}), opts.FromMap(map[string]string{b: pair[1]})
				got1, got2 := rd.read(r1), rd.read(r2)
				if r1.Err() != nil || r2.Err() != nil || !reflect.DeepEqual(got1, got2) {
					t.Errorf("%s: %s=%s and %s=%s differ: %+v vs %+v (%v, %v)", rd.name, b, pair[0], b, pair[1], got1, got2, r1.Err(), r2.Err())
				}
			}
			// And the value matters: 1 and 0 differ.
			on, off := rd.read(opts.FromMap(map[string]string{b: "1"})), rd.read(opts.FromMap(map[string]string{b: "0"}))
			if reflect.DeepEqual(on, off) {
				t.Errorf("%s: %s=1 and %s=0 read the same", rd.name, b, b)
			}
		}
	}
}
