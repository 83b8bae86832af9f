package awsx

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// fakeSSM answers the SSM JSON protocol (awsJson1_1) for SendCommand and GetCommandInvocation,
// and serves the output bucket path-style, as SSM and S3 would. No emulator here implements
// Run Command (kumo has no SendCommand).
type fakeSSM struct {
	mu     sync.Mutex
	sent   map[string]any
	polls  int
	notYet int
	final  map[string]any
	bucket map[string]string // key -> body of the output bucket
}

func (f *fakeSSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method == http.MethodGet { // S3 GetObject, path-style /bucket/key
		_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		body, ok := f.bucket[key]
		if !ok {
			w.WriteHeader(404)
			io.WriteString(w, `<Error><Code>NoSuchKey</Code></Error>`)
			return
		}
		io.WriteString(w, body)
		return
	}
	var in map[string]any
	_ = json.NewDecoder(r.Body).Decode(&in)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch r.Header.Get("X-Amz-Target") {
	case "AmazonSSM.SendCommand":
		f.sent = in
		json.NewEncoder(w).Encode(map[string]any{"Command": map[string]any{"CommandId": "cmd-1"}})
	case "AmazonSSM.GetCommandInvocation":
		f.polls++
		if f.polls <= f.notYet {
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]any{"__type": "InvocationDoesNotExist", "message": "not yet"})
			return
		}
		if f.polls == f.notYet+1 {
			json.NewEncoder(w).Encode(map[string]any{"Status": "InProgress"})
			return
		}
		json.NewEncoder(w).Encode(f.final)
	default:
		w.WriteHeader(400)
	}
}

func TestRunCommand(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 30000) + "\nthe end\n"
	tests := []struct {
		name       string
		final      map[string]any
		bucket     string
		wantErr    error
		wantStdout string
	}{
		{"success", map[string]any{"Status": "Success", "StandardOutputContent": "done\n"}, "", nil, "done\n"},
		{"failed carries stderr", map[string]any{"Status": "Failed", "ResponseCode": 2, "StandardErrorContent": "boom"}, "", ErrCommandFailed, ""},
		{"long output read from the output bucket", map[string]any{"Status": "Success", "StandardOutputContent": long[:InlineOutputLimit],
			"StandardOutputUrl": "https://s3.eu-west-1.amazonaws.com/out-bucket/ssm/cmd-1/i-1/awsrunShellScript/0.awsrunShellScript/stdout"}, "out-bucket", nil, long},
		{"long output, layout without a URL", map[string]any{"Status": "Success", "StandardOutputContent": long[:InlineOutputLimit]}, "out-bucket", nil, long},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeSSM{notYet: 1, final: tc.final, bucket: map[string]string{"ssm/cmd-1/i-1/awsrunShellScript/0.awsrunShellScript/stdout": long}}
			srv := httptest.NewServer(f)
			defer srv.Close()
			cfg := aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), RetryMaxAttempts: 1}
			rc := &RunCommand{SSM: ssm.NewFromConfig(cfg), Poll: time.Millisecond, OutputBucket: tc.bucket, OutputPrefix: "ssm/",
				S3: s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })}
			var sentID string
			inv, err := rc.Run(context.Background(), Command{InstanceID: "i-1", Commands: []string{"echo hi"}, Comment: "test", Timeout: time.Minute}, func(id string) { sentID = id })
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Run = %v, want %v", err, tc.wantErr)
			}
			if sentID != "cmd-1" || inv.CommandID != "cmd-1" {
				t.Fatalf("command id %q / %q", sentID, inv.CommandID)
			}
			if tc.wantErr != nil && (inv.Stderr != "boom" || inv.Status != "Failed" || inv.ResponseCode != 2) {
				t.Fatalf("invocation %+v", inv)
			}
			if inv.Stdout != tc.wantStdout {
				t.Fatalf("stdout %d chars, want %d", len(inv.Stdout), len(tc.wantStdout))
			}
			if f.sent["DocumentName"] != "AWS-RunShellScript" || (tc.bucket != "" && (f.sent["OutputS3BucketName"] != tc.bucket || f.sent["OutputS3KeyPrefix"] != "ssm")) {
				t.Fatalf("sent %v", f.sent)
			}
		})
	}
}
