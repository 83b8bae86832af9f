package packercli

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrBuildFailed is what every *BuildError unwraps to.
	ErrBuildFailed = errors.New("packer build failed")
	// ErrInvalidTemplate is what every *ValidateError unwraps to.
	ErrInvalidTemplate = errors.New("packer template is invalid")
	// ErrBadOutput means packer's machine-readable output could not be understood.
	ErrBadOutput = errors.New("packer printed output this wrapper cannot parse")
)

// BuildError is a failed `packer build`. Output holds the last lines the failing build
// printed (a provisioner's script output ends up there), so the caller sees why it failed
// without rerunning with logs.
type BuildError struct {
	Template string
	Build    string // e.g. zops-local.box; empty when packer failed before any build ran
	Message  string // packer's error for the build
	Output   []string
}

func (e *BuildError) Error() string {
	var b strings.Builder
	if e.Build != "" {
		fmt.Fprintf(&b, "packer build %s: build %s failed: %s", e.Template, e.Build, e.Message)
	} else {
		fmt.Fprintf(&b, "packer build %s failed: %s", e.Template, e.Message)
	}
	if len(e.Output) > 0 {
		b.WriteString("\nlast output of the build:\n  ")
		b.WriteString(strings.Join(e.Output, "\n  "))
	}
	return b.String()
}

func (e *BuildError) Unwrap() error { return ErrBuildFailed }

// ValidateError is a template `packer validate` rejected, with packer's explanation.
type ValidateError struct {
	Template string
	Output   string
}

func (e *ValidateError) Error() string {
	return fmt.Sprintf("packer validate %s: %s", e.Template, e.Output)
}

func (e *ValidateError) Unwrap() error { return ErrInvalidTemplate }
