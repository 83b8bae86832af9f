// Targets of zmanim-ops. Each file holds one namespace; every target is a thin call into
// internal/<capability>. Options are ZOPS_* environment variables, documented per target.
package main

import "github.com/magefile/mage/mg"

// Bench holds the benchmarks: each runs the toolkit and its baseline side by side in one run
// and prints `name: key=value ...` as its last line.
type Bench mg.Namespace
