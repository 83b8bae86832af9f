package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/recovery"
)

// Recovery drills the two losses on the local box and measures them; last line `recovery: box_lost_rto_s=A volume_lost_rto_s=B rpo_s=C` (goals: A <= 60, B <= 300, C <= 300).
//
// Box lost: the running box is killed outright and a new box from the image boots on the same
// data volume (rto_s from the loss to /health 200; no acknowledged write may be missing).
// Volume lost: the box and its volume are gone; a new box gets a blank volume and `zops-backup
// recover` restores the newest base backup plus the shipped WAL (rto_s to /health 200 on the
// recovered data; rpo_s = loss time minus the newest restored write of a writer inserting every
// 100 ms). Every new box is a fresh overlay of the image root. migration/recovery.md is the same
// for an operator. Needs root and the twin.
//
// Options (environment):
//
//	ZOPS_RECOVERY_ROOT        an image root already built by ami:local (default: build one, as ami:local does)
//	ZOPS_RECOVERY_LOSS_AFTER  how long the writer runs after the base backup before the volume is lost (default 150s)
//	ZOPS_RECOVERY_WORK        volumes and overlays (default .state/recovery)
//	ZOPS_AMI_VIA              packer (default) or chroot, for the build
func (Bench) Recovery(ctx context.Context) error { return recovery.BenchTarget(ctx, os.Stdout) }
