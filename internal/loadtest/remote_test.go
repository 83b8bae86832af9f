package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
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
)

// fakeAWS answers the SDK for the calls the prod mode makes: EC2 RunInstances and
// TerminateInstances (query protocol, XML), SSM DescribeInstanceInformation, SendCommand and
// GetCommandInvocation (JSON 1.1), and S3 PutObject/GetObject (path style). A command sent to
// an instance is executed in-process as the runner would: it reads the spec from the fake S3,
// runs the engine against edgeURL and stores the result.
type fakeAWS struct {
	t       *testing.T
	mu      sync.Mutex
	objects map[string][]byte
	running map[string]string // instance id -> region
	calls   []string
	nextID  int
	cmds    map[string]string // command id -> status
	cmdOut  map[string]string
	ranWith map[string]url2
	failRun bool
}

type url2 struct{ region, userData, imageID, shutdown, profile string }

func newFakeAWS(t *testing.T) *fakeAWS {
	return &fakeAWS{t: t, objects: map[string][]byte{}, running: map[string]string{}, cmds: map[string]string{},
		cmdOut: map[string]string{}, ranWith: map[string]url2{}}
}

func (f *fakeAWS) call(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func regionOf(r *http.Request) string {
	// Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/ec2/aws4_request, ...
	a := r.Header.Get("Authorization")
	if i := strings.Index(a, "Credential="); i >= 0 {
		parts := strings.Split(a[i:], "/")
		if len(parts) > 2 {
			return parts[2]
		}
	}
	return ""
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	region := regionOf(r)
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		f.ssm(w, region, strings.TrimPrefix(target, "AmazonSSM."), body)
		return
	}
	if r.Method == http.MethodPost && r.URL.Path == "/" {
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		if err := r.ParseForm(); err == nil && r.PostForm.Get("Action") != "" {
			f.ec2(w, region, r)
			return
		}
	}
	// S3, path style: /bucket/key
	key := strings.TrimPrefix(r.URL.Path, "/")
	switch r.Method {
	case http.MethodPut:
		f.call("s3:Put " + key)
		f.mu.Lock()
		f.objects[key] = body
		f.mu.Unlock()
		w.Header().Set("ETag", `"x"`)
	case http.MethodGet:
		f.call("s3:Get " + key)
		f.mu.Lock()
		b, ok := f.objects[key]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(404)
			fmt.Fprint(w, `<Error><Code>NoSuchKey</Code><Message>no</Message></Error>`)
			return
		}
		w.Write(b)
	default:
		w.WriteHeader(405)
	}
}

func (f *fakeAWS) ec2(w http.ResponseWriter, region string, r *http.Request) {
	action := r.PostForm.Get("Action")
	f.call("ec2:" + action + " " + region)
	w.Header().Set("Content-Type", "text/xml")
	switch action {
	case "RunInstances":
		f.mu.Lock()
		f.nextID++
		id := fmt.Sprintf("i-%05d", f.nextID)
		f.running[id] = region
		f.ranWith[id] = url2{region: region, userData: r.PostForm.Get("UserData"), imageID: r.PostForm.Get("ImageId"),
			shutdown: r.PostForm.Get("InstanceInitiatedShutdownBehavior"), profile: r.PostForm.Get("IamInstanceProfile.Name")}
		f.mu.Unlock()
		fmt.Fprintf(w, `<RunInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r1</requestId><reservationId>r-1</reservationId><instancesSet><item><instanceId>%s</instanceId><instanceType>t4g.small</instanceType></item></instancesSet></RunInstancesResponse>`, id)
	case "TerminateInstances":
		id := r.PostForm.Get("InstanceId.1")
		f.mu.Lock()
		_, ok := f.running[id]
		delete(f.running, id)
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(400)
			fmt.Fprintf(w, `<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID '%s' does not exist</Message></Error></Errors><RequestID>r2</RequestID></Response>`, id)
			return
		}
		fmt.Fprintf(w, `<TerminateInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r2</requestId><instancesSet><item><instanceId>%s</instanceId><currentState><code>32</code><name>shutting-down</name></currentState></item></instancesSet></TerminateInstancesResponse>`, id)
	default:
		w.WriteHeader(400)
	}
}

func (f *fakeAWS) ssm(w http.ResponseWriter, region, op string, body []byte) {
	f.call("ssm:" + op + " " + region)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	var in map[string]any
	json.Unmarshal(body, &in)
	switch op {
	case "DescribeInstanceInformation":
		id := in["Filters"].([]any)[0].(map[string]any)["Values"].([]any)[0].(string)
		fmt.Fprintf(w, `{"InstanceInformationList":[{"InstanceId":%q,"PingStatus":"Online","PlatformType":"Linux"}]}`, id)
	case "SendCommand":
		if in["DocumentName"] != "AWS-RunShellScript" {
			w.WriteHeader(400)
			return
		}
		var cmds []string
		for _, c := range in["Parameters"].(map[string]any)["commands"].([]any) {
			cmds = append(cmds, c.(string))
		}
		f.mu.Lock()
		f.nextID++
		id := fmt.Sprintf("cmd-%d", f.nextID)
		f.mu.Unlock()
		go f.execute(id, cmds)
		fmt.Fprintf(w, `{"Command":{"CommandId":%q,"Status":"Pending"}}`, id)
	case "GetCommandInvocation":
		f.mu.Lock()
		st, out := f.cmds[in["CommandId"].(string)], f.cmdOut[in["CommandId"].(string)]
		f.mu.Unlock()
		if st == "" {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"__type":"InvocationDoesNotExist","message":"not yet"}`)
			return
		}
		fmt.Fprintf(w, `{"Status":%q,"StandardOutputContent":%q,"StandardErrorContent":"boom"}`, st, out)
	default:
		w.WriteHeader(400)
	}
}

// execute plays the runner: the commands name the S3 objects it uses.
func (f *fakeAWS) execute(id string, cmds []string) {
	f.mu.Lock()
	f.cmds[id] = "InProgress"
	fail := f.failRun
	f.mu.Unlock()
	var specKey, resultKey string
	for _, c := range cmds {
		fs := strings.Fields(c)
		for i, w := range fs {
			if strings.HasPrefix(w, "s3://") && strings.HasSuffix(w, "spec.json") {
				specKey = strings.TrimPrefix(w, "s3://")
			}
			if strings.HasPrefix(w, "s3://") && strings.HasSuffix(w, "result.json") && i == len(fs)-1 {
				resultKey = strings.TrimPrefix(w, "s3://")
			}
		}
	}
	finish := func(status, out string) {
		f.mu.Lock()
		f.cmds[id], f.cmdOut[id] = status, out
		f.mu.Unlock()
	}
	if fail {
		finish("Failed", "")
		return
	}
	f.mu.Lock()
	b := f.objects[specKey]
	f.mu.Unlock()
	var spec RunSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		finish("Failed", "bad spec "+specKey)
		return
	}
	plan, _, err := spec.Plan("")
	if err != nil {
		finish("Failed", err.Error())
		return
	}
	res, err := Run(context.Background(), plan)
	if err != nil {
		finish("Failed", err.Error())
		return
	}
	rb, _ := json.Marshal(res)
	f.mu.Lock()
	f.objects[resultKey] = rb
	f.mu.Unlock()
	finish("Success", fmt.Sprintf("%s: %d scheduled\n", spec.Region, res.Scheduled()))
}

func testClients(endpoint string) *AWSClients {
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1}
	c := NewAWSClientsFromConfig(cfg, "eu-west-1", "zmanim-releases-test", endpoint)
	c.Poll = 20 * time.Millisecond
	return c
}

func TestRemoteRunOverSDK(t *testing.T) {
	t.Parallel()
	edge := httptest.NewServer(NewFakeEdge(nil, 0))
	defer edge.Close()
	fa := newFakeAWS(t)
	srv := httptest.NewServer(fa)
	defer srv.Close()
	c := testClients(srv.URL)
	rem := &Remote{Fleet: c, Commander: c, Store: c, HomeRegion: "eu-west-1", Instance: RunnerInstance{InstanceProfile: "zops-loadtest-runner"}}
	f := loadDefaultScenarios(t)
	var specs []RunSpec
	for _, reg := range []string{"us-east-1", "il-central-1"} {
		specs = append(specs, RunSpec{Scenario: "smoke", Target: edge.URL, Region: reg, Mix: f.Mix, HotRatio: -1,
			Stages: []Stage{Constant("smoke", 40, 500*time.Millisecond)}})
	}
	res, err := rem.RunRemote(context.Background(), "run1", []byte("\x7fELF fake binary"), specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Regions) != 2 || res.Scheduled() < 38 || res.Scheduled() > 40 {
		t.Errorf("merged result: regions %v scheduled %d", res.Regions, res.Scheduled())
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if len(fa.running) != 0 {
		t.Errorf("instances left running: %v", fa.running)
	}
	if string(fa.objects["zmanim-releases-test/loadtest/run1/zops-loadgen"]) != "\x7fELF fake binary" {
		t.Error("runner binary not uploaded intact")
	}
	regions := map[string]bool{}
	for _, w := range fa.ranWith {
		regions[w.region] = true
		if w.shutdown != "terminate" || !strings.Contains(w.imageID, "arm64") || w.profile != "zops-loadtest-runner" || w.userData == "" {
			t.Errorf("instance launched with %+v", w)
		}
	}
	if !regions["us-east-1"] || !regions["il-central-1"] {
		t.Errorf("instances launched in %v, want one per runner region", regions)
	}
	joined := strings.Join(fa.calls, "\n")
	for _, want := range []string{"ec2:RunInstances us-east-1", "ec2:RunInstances il-central-1", "ssm:SendCommand il-central-1",
		"ssm:GetCommandInvocation us-east-1", "ec2:TerminateInstances us-east-1", "s3:Get zmanim-releases-test/loadtest/run1/il-central-1/result.json"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no call %q in\n%s", want, joined)
		}
	}
}

func TestRemoteFailedCommandStillTerminates(t *testing.T) {
	t.Parallel()
	fa := newFakeAWS(t)
	fa.failRun = true
	srv := httptest.NewServer(fa)
	defer srv.Close()
	c := testClients(srv.URL)
	rem := &Remote{Fleet: c, Commander: c, Store: c, HomeRegion: "eu-west-1"}
	_, err := rem.RunRemote(context.Background(), "run2", []byte("bin"), []RunSpec{{Region: "us-east-1", Stages: []Stage{Constant("s", 1, time.Second)}}})
	if err == nil || !strings.Contains(err.Error(), "runner us-east-1") || !strings.Contains(err.Error(), "Failed: boom") {
		t.Errorf("err = %v", err)
	}
	fa.mu.Lock()
	if len(fa.running) != 0 {
		t.Errorf("instance left running after a failed command: %v", fa.running)
	}
	fa.mu.Unlock()
	// Terminating an instance that is already gone is fine.
	if err := c.Terminate(context.Background(), "us-east-1", "i-gone"); err != nil {
		t.Errorf("terminate gone instance: %v", err)
	}
}

func TestRunnerCommands(t *testing.T) {
	t.Parallel()
	cmds := RunnerCommands("s3://b/l/zops-loadgen", "s3://b/l/r/spec.json", "s3://b/l/r/result.json", "eu-west-1")
	joined := strings.Join(cmds, "\n")
	if cmds[0] != "set -euo pipefail" || !strings.Contains(joined, "zops-loadgen run -spec ./spec.json -out ./result.json") ||
		!strings.HasSuffix(joined, "s3://b/l/r/result.json") {
		t.Errorf("commands:\n%s", joined)
	}
}

// TestRemoteAcceptance launches real runners: only with ZOPS_AWS_ACCEPTANCE=1 and credentials
// (ZOPS_LOADTEST_BUCKET, ZOPS_LOADTEST_RUNNER_PROFILE, ZOPS_LOADTEST_TARGET and
// ZOPS_LOADTEST_RUNNER_BINARY, a linux/arm64 build of cmd/zops-loadgen).
func TestRemoteAcceptance(t *testing.T) {
	if os.Getenv("ZOPS_AWS_ACCEPTANCE") != "1" {
		t.Skip("set ZOPS_AWS_ACCEPTANCE=1 (with AWS credentials) to launch real runners")
	}
	bin, err := os.ReadFile(os.Getenv("ZOPS_LOADTEST_RUNNER_BINARY"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := NewAWSClients(ctx, "eu-west-1", os.Getenv("ZOPS_LOADTEST_BUCKET"), "")
	if err != nil {
		t.Fatal(err)
	}
	rem := &Remote{Fleet: c, Commander: c, Store: c, HomeRegion: "eu-west-1", Log: os.Stderr,
		Instance: RunnerInstance{InstanceProfile: os.Getenv("ZOPS_LOADTEST_RUNNER_PROFILE")}}
	f := loadDefaultScenarios(t)
	var specs []RunSpec
	for _, reg := range []string{"us-east-1", "il-central-1"} {
		specs = append(specs, RunSpec{Scenario: "smoke", Target: os.Getenv("ZOPS_LOADTEST_TARGET"), Region: reg, Mix: f.Mix,
			HotRatio: -1, Stages: []Stage{Constant("smoke", 5, 20*time.Second)}})
	}
	res, err := rem.RunRemote(ctx, time.Now().UTC().Format("20060102T150405Z"), bin, specs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Scheduled() == 0 {
		t.Fatal("no requests")
	}
}
