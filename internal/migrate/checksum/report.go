package checksum

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// WriteText prints the human summary: schema diff, sequence problems, one line per table and
// the first differing rows.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "verify: source %s\nverify: target %s\n", r.Source, r.Target)
	for _, wn := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", wn)
	}
	if len(r.Schema) == 0 {
		b.WriteString("schema: identical\n")
	} else {
		fmt.Fprintf(&b, "schema: %d differences\n", len(r.Schema))
		for _, d := range r.Schema {
			fmt.Fprintf(&b, "  %s\n", d)
		}
	}
	if len(r.Sequences) == 0 {
		b.WriteString("sequences: ok\n")
	} else {
		fmt.Fprintf(&b, "sequences: %d problems\n", len(r.Sequences))
		for _, d := range r.Sequences {
			fmt.Fprintf(&b, "  %s\n", d)
		}
	}
	var rows int64
	differ := 0
	for _, t := range r.Tables {
		rows += t.SourceRows
		if t.Method == MethodSkipped {
			fmt.Fprintf(&b, "table %s: not compared (%s)\n", t.Table, t.Note)
			differ++
			continue
		}
		if t.Identical() {
			fmt.Fprintf(&b, "table %s: identical, %d rows (%s, %d ranges)\n", t.Table, t.SourceRows, t.Method, t.Ranges)
			continue
		}
		differ++
		atLeast := ""
		if t.Truncated {
			atLeast = "at least "
		}
		fmt.Fprintf(&b, "table %s: DIFFERENT: source %d rows, target %d rows; %smissing %d, extra %d, changed %d (%d of %d ranges differ)\n",
			t.Table, t.SourceRows, t.TargetRows, atLeast, t.MissingCount, t.ExtraCount, t.ChangedCount, t.MismatchedRanges, t.Ranges)
		key := strings.Join(t.KeyColumns, ",")
		if key == "" {
			key = "row"
		}
		for _, d := range t.Missing {
			fmt.Fprintf(&b, "  missing in target: %s=%s\n", key, strings.Join(d.Key, ","))
		}
		for _, d := range t.Extra {
			fmt.Fprintf(&b, "  extra in target:   %s=%s\n", key, strings.Join(d.Key, ","))
		}
		for _, d := range t.Changed {
			fmt.Fprintf(&b, "  changed:           %s=%s columns %s\n", key, strings.Join(d.Key, ","), strings.Join(d.Columns, ","))
		}
	}
	verdict := "IDENTICAL"
	if !r.Identical {
		verdict = "DIFFERENT"
	}
	fmt.Fprintf(&b, "verify: %s: %d schema differences, %d sequence problems, %d of %d tables differ, %d source rows, %.2fs\n",
		verdict, len(r.Schema), len(r.Sequences), differ, len(r.Tables), rows, r.Seconds)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as indented JSON to path.
func (r Report) WriteJSON(path string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "CHECK ((x >= 0))" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}
