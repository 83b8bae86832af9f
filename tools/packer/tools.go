//go:build tools

// Package tools pins Packer core on the 1.9 line, the last MPL releases (1.10 and later are
// BSL and must not be used), built once per version by internal/tools.
package tools

import _ "github.com/hashicorp/packer"
