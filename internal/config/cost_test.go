package config

import (
	"strings"
	"testing"
)

// The usage assumptions default for every environment, are overridden one by one from the
// file, and refuse negative counts and shares above one, each named.
func TestCostUsage(t *testing.T) {
	e, err := load(t, `
environments:
  prod:
    budget: {variant: savings-plan-1yr}
    cost:
      ami_images_kept: 5
      wal_run: {put: 7}
`, "prod")
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultCostUsage()
	if e.Cost.AMIImagesKept != 5 || e.Cost.WALRun.Put != 7 || e.Cost.WALRun.Get != d.WALRun.Get || e.Cost.AverageShare != d.AverageShare || e.Budget.Variant != "savings-plan-1yr" {
		t.Errorf("cost = %+v, variant %q", e.Cost, e.Budget.Variant)
	}
	var keys []string
	for _, a := range e.Cost.Assumptions() {
		keys = append(keys, a.Key+"="+a.Value)
	}
	if s := strings.Join(keys, " "); !strings.Contains(s, "ami_images_kept=5") || !strings.Contains(s, "wal_run=put=7 list=14 get=6") {
		t.Errorf("assumptions: %s", s)
	}
	_, err = load(t, `
environments:
  prod:
    cost: {api_share: 1.5, backups_gb: -1, daily_run: {get: -3}}
`, "prod")
	for _, want := range []string{"cost.api_share: 1.5 is a share", "cost.backups_gb: -1 is negative", "cost.daily_run: -3 is negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}
