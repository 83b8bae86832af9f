//go:build tools

// Package tools pins versitygw, built once per version by internal/tools.
package tools

import _ "github.com/versity/versitygw/cmd/versitygw"
