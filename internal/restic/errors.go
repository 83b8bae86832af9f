package restic

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors for restic's documented exit codes (restic 0.17). Compare with errors.Is.
var (
	ErrFatal         = errors.New("restic failed")                                   // exit 1
	ErrPartialSource = errors.New("restic could not read some source data")          // exit 3
	ErrNoRepository  = errors.New("restic repository does not exist")                // exit 10
	ErrLocked        = errors.New("restic repository is locked by another process")  // exit 11
	ErrWrongPassword = errors.New("wrong restic repository password")                // exit 12
	ErrInterrupted   = errors.New("restic was interrupted")                          // exit 130
	ErrNoSnapshot    = errors.New("no matching restic snapshot")                     // our own: empty result
	ErrNoPassword    = errors.New("no restic repository password configured")        // our own: nothing to pass
	ErrBadOutput     = errors.New("restic printed output this wrapper cannot parse") // our own
)

// hints say what to do about each failure; they are part of the user-facing message.
var hints = map[int]string{
	1:   "see restic's message above; a network or S3 problem usually shows here",
	3:   "some source data could not be read; the snapshot is incomplete",
	10:  "initialise it with `go tool mage backup:run` (creates it on first use) or check the repository URL and bucket",
	11:  "another backup job holds the lock; wait for it, or if it died run `restic unlock` after checking no job runs",
	12:  "the password does not open this repository; check the SSM parameter (restic-password) for this environment",
	130: "the run was cancelled",
}

// ExitError is a restic run that ended with a non-zero exit code. It unwraps to the sentinel
// matching the code, so callers test errors.Is(err, ErrLocked) and so on.
type ExitError struct {
	Command string // restic sub-command, e.g. "backup"
	Code    int
	// Stderr holds restic's last error lines. restic never prints the password, and the
	// wrapper never passes it on the command line, so this is safe to show.
	Stderr string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no error output"
	}
	s := fmt.Sprintf("restic %s exited with status %d: %s", e.Command, e.Code, msg)
	if h, ok := hints[e.Code]; ok {
		s += " (" + h + ")"
	}
	return s
}

// Unwrap maps the exit code to its sentinel.
func (e *ExitError) Unwrap() error { return codeErr(e.Code) }

func codeErr(code int) error {
	switch code {
	case 1:
		return ErrFatal
	case 3:
		return ErrPartialSource
	case 10:
		return ErrNoRepository
	case 11:
		return ErrLocked
	case 12:
		return ErrWrongPassword
	case 130:
		return ErrInterrupted
	}
	return ErrFatal
}
