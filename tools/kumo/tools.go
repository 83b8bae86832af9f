//go:build tools

// Package tools pins kumo, built once per version by internal/tools.
package tools

import _ "github.com/sivchari/kumo/cmd/kumo"
