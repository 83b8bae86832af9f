package restic

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestBackupArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    BackupOptions
		want    []string
		wantErr bool
	}{
		{"paths", BackupOptions{Tags: []string{"zops", "redis"}, Host: "box", Paths: []string{"/tmp/a.rdb"}},
			[]string{"--tag", "zops", "--tag", "redis", "--host", "box", "--", "/tmp/a.rdb"}, false},
		{"command hides secrets", BackupOptions{Host: "box", Command: []string{"pg_dump", "-Fc"}, StdinFilename: "db.dump"},
			[]string{"--host", "box", "--stdin-from-command", "--stdin-filename", "db.dump", "--", "env",
				"-u", "RESTIC_PASSWORD", "-u", "RESTIC_PASSWORD_COMMAND", "-u", "RESTIC_PASSWORD_FILE", "-u", "AWS_SECRET_ACCESS_KEY", "-u", "AWS_SESSION_TOKEN",
				"--", "pg_dump", "-Fc"}, false},
		{"both", BackupOptions{Paths: []string{"a"}, Command: []string{"b"}}, nil, true},
		{"nothing", BackupOptions{}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.Args()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("args\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestForgetArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    ForgetOptions
		want    []string
		wantErr bool
	}{
		{"policy", ForgetOptions{KeepDaily: 7, Filter: Filter{Tags: []string{"zops", "pg"}, Host: "box", Latest: 3}, Prune: true},
			[]string{"--keep-daily", "7", "--tag", "zops,pg", "--host", "box", "--prune"}, false},
		{"ids", ForgetOptions{IDs: []string{"abc"}}, []string{"abc"}, false},
		{"refuses everything", ForgetOptions{Prune: true}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.Args()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("args\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestExitErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code int
		want error
		hint string
	}{
		{1, ErrFatal, "network"},
		{3, ErrPartialSource, "incomplete"},
		{10, ErrNoRepository, "initialise"},
		{11, ErrLocked, "lock"},
		{12, ErrWrongPassword, "SSM parameter"},
		{130, ErrInterrupted, "cancelled"},
		{42, ErrFatal, ""},
	}
	for _, tt := range tests {
		err := error(&ExitError{Command: "backup", Code: tt.code, Stderr: "Fatal: boom"})
		if !errors.Is(err, tt.want) {
			t.Errorf("code %d: errors.Is(%v) = false", tt.code, tt.want)
		}
		if !strings.Contains(err.Error(), tt.hint) || !strings.Contains(err.Error(), "Fatal: boom") {
			t.Errorf("code %d: message %q lacks hint %q or stderr", tt.code, err, tt.hint)
		}
	}
}

func TestParseBackup(t *testing.T) {
	t.Parallel()
	out := []byte(`{"message_type":"status","percent_done":0.5,"bytes_done":10}
some plain notice
{"message_type":"summary","files_new":1,"data_added":284,"total_bytes_processed":3,"snapshot_id":"1b78"}
`)
	var statuses int
	sum, errs, err := parseBackup(out, func(BackupStatus) { statuses++ })
	if err != nil || len(errs) != 0 || statuses != 1 {
		t.Fatalf("err=%v errs=%v statuses=%d", err, errs, statuses)
	}
	if sum.SnapshotID != "1b78" || sum.TotalBytesProcessed != 3 || sum.DataAdded != 284 {
		t.Errorf("summary = %+v", sum)
	}
	if _, _, err := parseBackup([]byte(`{"message_type":"status"}`), nil); !errors.Is(err, ErrBadOutput) {
		t.Errorf("missing summary: err = %v, want ErrBadOutput", err)
	}
	_, errs, _ = parseBackup([]byte(`{"message_type":"error","error":{"message":"read failed"},"during":"archival","item":"/x"}
{"message_type":"summary","snapshot_id":"a"}`), nil)
	if len(errs) != 1 || errs[0].Error.Message != "read failed" {
		t.Errorf("errors = %+v", errs)
	}
}

func TestParseLs(t *testing.T) {
	t.Parallel()
	out := []byte(`{"time":"2026-11-27T10:00:00Z","tree":"t","paths":["/x"],"hostname":"box","id":"abc","short_id":"abc","struct_type":"snapshot","message_type":"snapshot"}
{"name":"db.dump","type":"file","path":"/db.dump","size":1234,"struct_type":"node","message_type":"node"}
`)
	nodes, err := parseLs(out)
	if err != nil || len(nodes) != 1 || nodes[0].Path != "/db.dump" || nodes[0].Size != 1234 {
		t.Fatalf("nodes=%+v err=%v", nodes, err)
	}
}

func TestNoPassword(t *testing.T) {
	t.Parallel()
	r := &Repo{Bin: "restic", URL: "s3:http://x/y"}
	if _, err := r.env(); !errors.Is(err, ErrNoPassword) {
		t.Fatalf("err = %v, want ErrNoPassword", err)
	}
}
