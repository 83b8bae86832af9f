package main

import (
	"context"
	"os"

	"github.com/shtetl/zmanim-ops/internal/fresh"
)

// Fresh runs the README's two commands on a fresh machine: a new Debian 12 root (debootstrap,
// cached once) with Go 1.26 and git only, empty Go and tool caches, the committed HEAD of main
// cloned, `go tool mage release` then `go tool mage test` run exactly, as root, in their own
// network, mount and PID namespaces (the shared twin's ports are not touched). Needs root;
// takes 20-30 min of both cores.
// Last line: `fresh: release_s=A test_s=B failed_tests=N release_exit=C test_exit=D`.
//
// Options: ZOPS_FRESH_ONLY=release (quick mode: the first command only),
// ZOPS_FRESH_KEEP=1 (keep the root, default /var/tmp/zops-fresh; the log is always kept
// next to it, /var/tmp/zops-fresh.log),
// ZOPS_FRESH_DIR (where the root goes), ZOPS_FRESH_REPO and ZOPS_FRESH_BRANCH (what is
// cloned; default this repository's main).
func (Bench) Fresh(ctx context.Context) error {
	return fresh.BenchTarget(ctx, os.Stdout)
}
