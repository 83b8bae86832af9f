package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/shtetl/zmanim-ops/internal/boxbuild"
)

// Ami builds and manages the box's machine image from one recipe (packer/recipe): ami:local builds
// a Debian root here with the project's Packer plugin and proves it by booting it under systemd;
// ami builds the Amazon Linux 2023 image on EC2; ami:list and ami:prune manage published images.
type Ami mg.Namespace

// Local builds the box root with `packer build -only zops-local.box` and proves it booted under real systemd (needs root and the twin).
//
// The root (Debian bookworm, host architecture: PostgreSQL 15 + PostGIS and Redis 7 stand in for
// AL2023's PGDG PostgreSQL 16 and valkey) is built from packer/recipe with host-arch binaries
// of zops-box, zops-backup, restic and the API. Then it is booted with systemd as PID 1 in its
// own namespaces (network 10.77.62.0/30, a 2 GiB sparse file on a loop device as the data
// volume, a fake IMDSv2, the twin's SSM and S3) and each proof is printed: first boot formats
// the blank volume and /health answers within 5 s of the API unit starting (TC-7.3); every
// unit verifies; zops-backup run writes a snapshot and puts its metric; zops-box deploy
// switches the API under load with no failed request; a second boot fails naming a missing
// SSM parameter, then, fixed, keeps the volume and its rows.
//
// Options (environment):
//
//	ZOPS_AMI_WORK  build directory (default .state/box: files/ staging, root/ the image)
//	ZOPS_AMI_VIA   packer (default) or chroot (the same recipe without Packer)
func (Ami) Local(ctx context.Context) error { return boxbuild.LocalTarget(ctx, os.Stdout) }
