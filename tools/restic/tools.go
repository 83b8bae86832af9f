//go:build tools

// Package tools pins restic, built once per version by internal/tools.
package tools

import _ "github.com/restic/restic/cmd/restic"
