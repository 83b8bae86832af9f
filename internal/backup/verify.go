package backup

import (
	"context"
	"fmt"
	"time"

	"github.com/shtetl/zmanim-ops/internal/restic"
)

// SubsetForDay returns the --read-data-subset for a day: Sunday reads 1/7, Monday 2/7, ...
// so that seven consecutive daily runs (or a weekly run over seven weeks) read every pack.
func SubsetForDay(t time.Time) string {
	return fmt.Sprintf("%d/7", int(t.UTC().Weekday())+1)
}

// Verify is backup:verify: `restic check --read-data-subset n/7` with n rotating by weekday.
func (j *Job) Verify(ctx context.Context) error {
	subset := SubsetForDay(j.now())
	j.logf("restic check --read-data-subset %s on %s", subset, j.Repo)
	start := time.Now()
	if _, err := j.Repo.Check(ctx, restic.CheckOptions{ReadDataSubset: subset}); err != nil {
		return fmt.Errorf("verify repository %s (subset %s): %w", j.Repo, subset, err)
	}
	j.logf("repository %s is consistent; data subset %s read in %.1fs", j.Repo, subset, time.Since(start).Seconds())
	return nil
}
