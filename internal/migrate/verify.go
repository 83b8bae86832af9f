package migrate

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/shtetl/zmanim-ops/internal/migrate/checksum"
)

// VerifyOptions configures RunVerify.
type VerifyOptions struct {
	SourceURL, TargetURL string
	// ReportPath is the JSON report file; "" means .state/migrate/verify-<time>.json.
	ReportPath string
	Checksum   checksum.Options
	Out        io.Writer
}

// RunVerify compares the two databases, prints the summary, writes the JSON report and returns
// ErrDifferent unless they are identical.
func RunVerify(ctx context.Context, o VerifyOptions) (checksum.Report, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Checksum.Progress == nil {
		o.Checksum.Progress = func(s string) { fmt.Fprintf(o.Out, "verify: %s\n", s) }
	}
	fmt.Fprintf(o.Out, "verify: comparing schema, sequences and data inside both databases\n")
	rep, err := checksum.Verify(ctx, o.SourceURL, o.TargetURL, o.Checksum)
	if err != nil {
		return rep, err
	}
	if err := rep.WriteText(o.Out); err != nil {
		return rep, err
	}
	path := o.ReportPath
	if path == "" {
		path = filepath.Join(".state", "migrate", "verify-"+time.Now().UTC().Format("20060102T150405Z")+".json")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return rep, fmt.Errorf("create report directory: %w", err)
	}
	if err := rep.WriteJSON(path); err != nil {
		return rep, err
	}
	fmt.Fprintf(o.Out, "verify: report %s\n", path)
	if !rep.Identical {
		return rep, fmt.Errorf("%w: see the summary above and %s", ErrDifferent, path)
	}
	return rep, nil
}
