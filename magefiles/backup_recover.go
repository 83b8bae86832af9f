package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/recovery"
)

// Recover restores the production box's cluster from the newest base backup plus all shipped WAL, after its data volume was lost (migration/recovery.md).
//
// Runs `zops-backup recover` on the box through SSM Run Command: the box must be a new one on a
// new blank volume (first boot initialised a new cluster); a cluster initialised more than
// 2 hours ago is refused unless ZOPS_FORCE=1. The replaced cluster is kept aside, the recovered
// one put in place, the services restarted. Production only (ZOPS_ENV=prod); bench:recovery
// drills it on the local box.
//
// Options: ZOPS_ENV=prod; ZOPS_FORCE=1 to replace an older cluster (it is kept aside).
func (Backup) Recover(ctx context.Context) error { return recovery.RecoverTarget(ctx, os.Stdout) }
