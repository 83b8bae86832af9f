//go:build ignore

// Zero-install bootstrap: `go run magefile.go <target>` works without the mage binary.
// The usual form is `go tool mage <target>` (mage is pinned as a tool in go.mod).
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
