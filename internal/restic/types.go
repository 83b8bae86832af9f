package restic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// BackupStatus is a progress line of `restic backup --json`.
type BackupStatus struct {
	MessageType    string   `json:"message_type"` // "status"
	SecondsElapsed float64  `json:"seconds_elapsed"`
	PercentDone    float64  `json:"percent_done"`
	TotalFiles     int64    `json:"total_files"`
	FilesDone      int64    `json:"files_done"`
	TotalBytes     int64    `json:"total_bytes"`
	BytesDone      int64    `json:"bytes_done"`
	ErrorCount     int64    `json:"error_count"`
	CurrentFiles   []string `json:"current_files"`
}

// BackupError is an error line of `restic backup --json`.
type BackupError struct {
	MessageType string `json:"message_type"` // "error"
	Error       struct {
		Message string `json:"message"`
	} `json:"error"`
	During string `json:"during"`
	Item   string `json:"item"`
}

// BackupSummary is the final line of `restic backup --json`.
type BackupSummary struct {
	MessageType         string    `json:"message_type"` // "summary"
	FilesNew            int64     `json:"files_new"`
	FilesChanged        int64     `json:"files_changed"`
	FilesUnmodified     int64     `json:"files_unmodified"`
	DataAdded           int64     `json:"data_added"`
	DataAddedPacked     int64     `json:"data_added_packed"`
	TotalFilesProcessed int64     `json:"total_files_processed"`
	TotalBytesProcessed int64     `json:"total_bytes_processed"`
	TotalDuration       float64   `json:"total_duration"`
	BackupStart         time.Time `json:"backup_start"`
	BackupEnd           time.Time `json:"backup_end"`
	SnapshotID          string    `json:"snapshot_id"`
	DryRun              bool      `json:"dry_run"`
}

// SnapshotSummary is the summary restic 0.17 stores inside each snapshot.
type SnapshotSummary struct {
	BackupStart         time.Time `json:"backup_start"`
	BackupEnd           time.Time `json:"backup_end"`
	TotalFilesProcessed int64     `json:"total_files_processed"`
	TotalBytesProcessed int64     `json:"total_bytes_processed"`
	DataAdded           int64     `json:"data_added"`
}

// Snapshot is one element of `restic snapshots --json`.
type Snapshot struct {
	ID       string           `json:"id"`
	ShortID  string           `json:"short_id"`
	Time     time.Time        `json:"time"`
	Parent   string           `json:"parent,omitempty"`
	Tree     string           `json:"tree"`
	Paths    []string         `json:"paths"`
	Hostname string           `json:"hostname"`
	Username string           `json:"username"`
	Tags     []string         `json:"tags"`
	Program  string           `json:"program_version"`
	Summary  *SnapshotSummary `json:"summary,omitempty"`
}

// HasTag reports whether the snapshot carries tag.
func (s Snapshot) HasTag(tag string) bool {
	for _, t := range s.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// ForgetGroup is one group of `restic forget --json`.
type ForgetGroup struct {
	Tags   []string   `json:"tags"`
	Host   string     `json:"host"`
	Paths  []string   `json:"paths"`
	Keep   []Snapshot `json:"keep"`
	Remove []Snapshot `json:"remove"`
}

// CheckSummary is the final line of `restic check --json` (restic 0.17).
type CheckSummary struct {
	MessageType     string   `json:"message_type"` // "summary"
	NumErrors       int      `json:"num_errors"`
	BrokenPacks     []string `json:"broken_packs"`
	HintRepairIndex bool     `json:"suggest_repair_index"`
	HintPrune       bool     `json:"suggest_prune"`
}

// RestoreSummary is the final line of `restic restore --json`.
type RestoreSummary struct {
	MessageType    string  `json:"message_type"` // "summary"
	SecondsElapsed float64 `json:"seconds_elapsed"`
	TotalFiles     int64   `json:"total_files"`
	FilesRestored  int64   `json:"files_restored"`
	FilesSkipped   int64   `json:"files_skipped"`
	TotalBytes     int64   `json:"total_bytes"`
	BytesRestored  int64   `json:"bytes_restored"`
	BytesSkipped   int64   `json:"bytes_skipped"`
}

// Node is a file or directory line of `restic ls --json`.
type Node struct {
	Name  string    `json:"name"`
	Type  string    `json:"type"` // file, dir, symlink
	Path  string    `json:"path"`
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"`
}

// message is the common part of every JSON line: restic 0.17 tags lines with message_type,
// and ls lines with struct_type.
type message struct {
	MessageType string `json:"message_type"`
	StructType  string `json:"struct_type"`
}

// eachLine calls fn for every JSON object line of out; non-JSON lines are skipped (restic
// prints a few plain-text notices even in JSON mode).
func eachLine(out []byte, fn func(kind string, line []byte) error) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var m message
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("%w: %v", ErrBadOutput, err)
		}
		kind := m.MessageType
		if kind == "" {
			kind = m.StructType
		}
		if err := fn(kind, line); err != nil {
			return err
		}
	}
	return sc.Err()
}

// parseBackup returns the summary and error lines of `restic backup --json` output.
func parseBackup(out []byte, onStatus func(BackupStatus)) (BackupSummary, []BackupError, error) {
	var sum BackupSummary
	var errs []BackupError
	found := false
	err := eachLine(out, func(kind string, line []byte) error {
		switch kind {
		case "summary":
			found = true
			return json.Unmarshal(line, &sum)
		case "error":
			var e BackupError
			if err := json.Unmarshal(line, &e); err != nil {
				return err
			}
			errs = append(errs, e)
		case "status":
			if onStatus != nil {
				var s BackupStatus
				if err := json.Unmarshal(line, &s); err == nil {
					onStatus(s)
				}
			}
		}
		return nil
	})
	if err != nil {
		return sum, errs, err
	}
	if !found {
		return sum, errs, fmt.Errorf("%w: backup printed no summary", ErrBadOutput)
	}
	return sum, errs, nil
}

// parseLs returns the nodes of `restic ls --json` output.
func parseLs(out []byte) ([]Node, error) {
	var nodes []Node
	err := eachLine(out, func(kind string, line []byte) error {
		if kind != "node" {
			return nil
		}
		var n Node
		if err := json.Unmarshal(line, &n); err != nil {
			return fmt.Errorf("%w: %v", ErrBadOutput, err)
		}
		nodes = append(nodes, n)
		return nil
	})
	return nodes, err
}

// parseSummary finds the "summary" line of check/restore output and decodes it into v.
func parseSummary(out []byte, v any) (bool, error) {
	found := false
	err := eachLine(out, func(kind string, line []byte) error {
		if kind == "summary" {
			found = true
			return json.Unmarshal(line, v)
		}
		return nil
	})
	return found, err
}
