package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// fakeSSM answers the SSM JSON protocol (awsJson1_1, X-Amz-Target) the SDK speaks.
type fakeSSM struct {
	mu       sync.Mutex
	sent     map[string]any
	polls    int
	final    map[string]any // the GetCommandInvocation answer once done
	notYet   int            // InvocationDoesNotExist answers first
	inFlight int            // InProgress answers before final
}

func (f *fakeSSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	_ = json.Unmarshal(body, &in)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch r.Header.Get("X-Amz-Target") {
	case "AmazonSSM.SendCommand":
		f.sent = in
		json.NewEncoder(w).Encode(map[string]any{"Command": map[string]any{"CommandId": "cmd-123", "Status": "Pending"}})
	case "AmazonSSM.GetCommandInvocation":
		f.polls++
		if in["CommandId"] != "cmd-123" {
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]any{"__type": "InvalidCommandId", "message": "bad id"})
			return
		}
		if f.polls <= f.notYet {
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]any{"__type": "InvocationDoesNotExist", "message": "not yet"})
			return
		}
		if f.polls <= f.notYet+f.inFlight {
			json.NewEncoder(w).Encode(map[string]any{"Status": "InProgress"})
			return
		}
		json.NewEncoder(w).Encode(f.final)
	default:
		w.WriteHeader(400)
		json.NewEncoder(w).Encode(map[string]any{"__type": "UnknownOperationException"})
	}
}

func sdkConfig(url string) aws.Config {
	return aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(url), Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
}

func TestSSMDeployer(t *testing.T) {
	tests := []struct {
		name     string
		final    map[string]any
		wantErr  error
		wantText string
	}{
		{"success", map[string]any{"Status": "Success", "ResponseCode": 0, "StandardOutputContent": "  installed ...\ndeployed v2 (previous v1)\n"}, nil, ""},
		{"rolled back on the box", map[string]any{"Status": "Failed", "ResponseCode": 1, "StandardOutputContent": "  rolled back: current -> releases/v1",
			"StandardErrorContent": "zops-box: health gate failed; rolled back to v1: ...\n--- last log lines of v2 ---\nrefusing to start"}, onbox.ErrHealthGate, "refusing to start"},
		{"agent failed", map[string]any{"Status": "Failed", "ResponseCode": 1, "StandardErrorContent": "zops-box: sha256 mismatch"}, ErrRemote, "sha256 mismatch"},
		{"timed out", map[string]any{"Status": "TimedOut", "ResponseCode": -1}, ErrRemote, "TimedOut"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSSM{final: tc.final, notYet: 1, inFlight: 2}
			srv := httptest.NewServer(f)
			defer srv.Close()
			var out bytes.Buffer
			d := &SSMDeployer{SSM: ssm.NewFromConfig(sdkConfig(srv.URL)), InstanceID: "i-0abc", Bucket: "zmanim-releases-prod",
				Region: "eu-west-1", Health: 30 * time.Second, Keep: 10, Timeout: time.Minute, Poll: time.Millisecond, Comment: "zops release by me", Out: &out}
			if d.Where() != "i-0abc over SSM Run Command" {
				t.Errorf("Where() = %q", d.Where())
			}
			o, err := d.Deploy(context.Background(), "v2")
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Deploy = %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("error lacks %q: %v", tc.wantText, err)
			}
			if o.RolledBack != errors.Is(tc.wantErr, onbox.ErrHealthGate) {
				t.Fatalf("outcome %+v", o)
			}
			if f.sent["DocumentName"] != "AWS-RunShellScript" || !strings.Contains(jsonOf(f.sent["InstanceIds"]), "i-0abc") {
				t.Fatalf("sent %v", f.sent)
			}
			params := jsonOf(f.sent["Parameters"])
			if !strings.Contains(params, `/opt/zmanim/bin/zops-box deploy --bucket 'zmanim-releases-prod' --region 'eu-west-1' --health-timeout 30s --keep 10 'v2'`) {
				t.Fatalf("command %s", params)
			}
			if f.polls != 4 {
				t.Fatalf("polled %d times, want 4 (not-yet, 2x in progress, done)", f.polls)
			}
		})
	}
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

// fakeEC2 answers DescribeInstances (EC2 query protocol, XML).
func TestSSMDeployerFindsInstanceByTag(t *testing.T) {
	var query string
	var lookups int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		query = r.Form.Encode()
		lookups++
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><reservationSet><item><instancesSet><item><instanceId>i-0found</instanceId></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`)
	}))
	defer srv.Close()
	d := &SSMDeployer{EC2: ec2.NewFromConfig(sdkConfig(srv.URL)), NameTag: "zmanim-prod-box"}
	id, err := d.instance(context.Background())
	if err != nil || id != "i-0found" {
		t.Fatalf("instance = %q %v", id, err)
	}
	if !strings.Contains(query, "tag%3AName") || !strings.Contains(query, "zmanim-prod-box") {
		t.Fatalf("query %s", query)
	}
	// The stage step and the deploy step of one release go to the box found once.
	if id, err := d.instance(context.Background()); err != nil || id != "i-0found" || lookups != 1 {
		t.Fatalf("second lookup = %q %v after %d DescribeInstances, want the same box from 1", id, err, lookups)
	}
	if _, err := (&SSMDeployer{}).instance(context.Background()); err == nil || !strings.Contains(err.Error(), "ZOPS_INSTANCE_ID") {
		t.Fatalf("no id, no EC2: %v", err)
	}
}

// TestSSMDeployerAcceptance sends a real `zops-box deploy` of ZOPS_AWS_ACCEPTANCE_VERSION
// to the configured production box. It needs AWS credentials and a box; it is skipped
// unless ZOPS_AWS_ACCEPTANCE=1.
func TestSSMDeployerAcceptance(t *testing.T) {
	if os.Getenv("ZOPS_AWS_ACCEPTANCE") != "1" {
		t.Skip("set ZOPS_AWS_ACCEPTANCE=1 (with AWS credentials, ZOPS_ENV=prod and ZOPS_AWS_ACCEPTANCE_VERSION) to run against AWS")
	}
	o, err := load(os.Stdout)
	must(t, err)
	w, err := wire(context.Background(), o)
	must(t, err)
	v := os.Getenv("ZOPS_AWS_ACCEPTANCE_VERSION")
	if v == "" {
		t.Fatal("ZOPS_AWS_ACCEPTANCE_VERSION: name a released version to (re)deploy")
	}
	if _, err := w.deployer.Deploy(context.Background(), v); err != nil {
		t.Fatal(err)
	}
}

// Finding 7 (issue 14): when following the command fails while it still runs (here SSM answers
// an error after the command went out), the box may have switched: the deployer says the
// outcome is unknown, so nothing is undone.
func TestSSMDeployerPollingFailureIsAnUnknownOutcome(t *testing.T) {
	f := &fakeSSM{inFlight: 1}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "AmazonSSM.GetCommandInvocation" && f.polls >= 1 {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]any{"__type": "AccessDeniedException", "message": "injected: token expired"})
			return
		}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	d := &SSMDeployer{SSM: ssm.NewFromConfig(sdkConfig(srv.URL)), InstanceID: "i-0abc", Bucket: "b", Timeout: time.Minute, Poll: time.Millisecond}
	dep := &Deploy{Deployer: d, Version: func() string { return "v2" }}
	err := dep.Run(context.Background())
	if !errors.Is(err, ErrOutcomeUnknown) || dep.State() != BoxUnknown {
		t.Fatalf("Deploy = %v (state %s), want ErrOutcomeUnknown", err, dep.State())
	}
}

// The stage step on the production path: `zops-box install` over Run Command, at low
// priority, before the deploy command; a failure names the box's error and switches nothing.
func TestSSMDeployerStagesWithZopsBoxInstall(t *testing.T) {
	for _, tc := range []struct {
		name  string
		final map[string]any
		err   string
	}{
		{"installed", map[string]any{"Status": "Success", "ResponseCode": 0, "StandardOutputContent": "installed v2 (not serving yet)\n"}, ""},
		{"refused", map[string]any{"Status": "Failed", "ResponseCode": 1, "StandardErrorContent": "zops-box: sha256 mismatch for zmanim-api"}, "sha256 mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSSM{final: tc.final, inFlight: 1}
			srv := httptest.NewServer(f)
			defer srv.Close()
			var out bytes.Buffer
			d := &SSMDeployer{SSM: ssm.NewFromConfig(sdkConfig(srv.URL)), InstanceID: "i-0abc", Bucket: "zmanim-releases-prod", Region: "eu-west-1", Keep: 10, Poll: time.Millisecond, Out: &out}
			var st Stager = d
			err := st.Stage(context.Background(), "v2")
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !errors.Is(err, ErrRemote) || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Stage = %v, want %q", err, tc.err)
			}
			params := jsonOf(f.sent["Parameters"])
			if !strings.Contains(params, `/opt/zmanim/bin/zops-box install --bucket 'zmanim-releases-prod' --region 'eu-west-1' --keep 10 'v2'`) {
				t.Fatalf("command %s", params)
			}
			if tc.err == "" && !strings.Contains(out.String(), "installed v2") {
				t.Errorf("the box's output was not shown: %q", out.String())
			}
		})
	}
	if skip, _ := (&Stage{Deployer: &SSMDeployer{}}).Skip(context.Background()); skip {
		t.Error("the stage step is skipped on the SSM path")
	}
}
