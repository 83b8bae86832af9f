package site

import (
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/opts"
)

func TestReadEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    EnvOptions
		problem []string
	}{
		{"defaults", nil, EnvOptions{}, nil},
		{"all set", map[string]string{"ZOPS_SITE_GRACE": "48h", "ZOPS_SITE_MAX_DELETE": "25%", "ZOPS_SITE_PATHS": "30", "ZOPS_SITE_WAIT": "90s", "ZOPS_SITE_CONCURRENCY": "64", "ZOPS_DISTRIBUTION_ID": "E123", "ZOPS_SITE_BUCKET": "b"},
			EnvOptions{Grace: 48 * time.Hour, MaxDeleteShare: 0.25, PathBudget: 30, Wait: 90 * time.Second, Concurrency: 64, Distribution: "E123", Bucket: "b"}, nil},
		{"grace 0 deletes at once", map[string]string{"ZOPS_SITE_GRACE": "0s"}, EnvOptions{Grace: -1}, nil},
		{"every problem listed", map[string]string{"ZOPS_SITE_GRACE": "soon", "ZOPS_SITE_MAX_DELETE": "2", "ZOPS_SITE_PATHS": "-1", "ZOPS_SITE_CONCURRENCY": "many", "ZOPS_SITE_DISTRIBUTION_ID": "E1"}, EnvOptions{},
			[]string{"ZOPS_SITE_GRACE", "ZOPS_SITE_MAX_DELETE", "ZOPS_SITE_PATHS", "ZOPS_SITE_CONCURRENCY", "ZOPS_SITE_DISTRIBUTION_ID=\"E1\": no longer read: set ZOPS_DISTRIBUTION_ID"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"ZOPS_SITE_GRACE", "ZOPS_SITE_MAX_DELETE", "ZOPS_SITE_PATHS", "ZOPS_SITE_WAIT", "ZOPS_SITE_CONCURRENCY", "ZOPS_SITE_DISTRIBUTION_ID", "ZOPS_DISTRIBUTION_ID", "ZOPS_SITE_BUCKET"} {
				t.Setenv(k, tc.env[k])
			}
			r := opts.New()
			got := ReadEnv(r)
			err := r.Err()
			if len(tc.problem) == 0 {
				if err != nil || got != tc.want {
					t.Fatalf("ReadEnv = %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, p := range tc.problem {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error does not name %s: %v", p, err)
				}
			}
		})
	}
}
