// Command hello is a tiny program the build tests cross-compile (fast, no dependencies).
package main

import "fmt"

var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

func main() { fmt.Printf("zmanim-api %s (commit %s, built %s)\n", version, commit, date) }
