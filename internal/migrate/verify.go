package migrate

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// VerifyOptionsFromEnv reads the ZOPS_MIGRATE_* options documented on the mage target.
func VerifyOptionsFromEnv() (VerifyOptions, error) {
	var o VerifyOptions
	var problems []string
	geti := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				problems = append(problems, fmt.Sprintf("%s=%q: want a positive integer", name, v))
				return
			}
			*dst = n
		}
	}
	geti("ZOPS_MIGRATE_PARALLEL", &o.Checksum.Parallel)
	geti("ZOPS_MIGRATE_MAX_ROWS", &o.Checksum.MaxRows)
	var rangeMB int
	geti("ZOPS_MIGRATE_RANGE_MB", &rangeMB)
	o.Checksum.RangeBytes = int64(rangeMB) << 20
	if v := os.Getenv("ZOPS_MIGRATE_TABLES"); v != "" {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				if !strings.Contains(t, ".") {
					t = "public." + t
				}
				o.Checksum.Tables = append(o.Checksum.Tables, t)
			}
		}
	}
	o.Checksum.NoSnapshot = truthy(os.Getenv("ZOPS_MIGRATE_NO_SNAPSHOT"))
	o.ReportPath = os.Getenv("ZOPS_MIGRATE_REPORT")
	if len(problems) > 0 {
		return o, fmt.Errorf("invalid options:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return o, nil
}

func truthy(v string) bool {
	v = strings.ToLower(v)
	return v == "1" || v == "true" || v == "yes"
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
