package ec2

// No local emulator implements EC2 RunInstances/CreateImage or SSM SendCommand (kumo has
// neither; see DESIGN.md), so the builder is tested over this fake: an in-memory EC2 and SSM
// whose "instance" is this machine (SendCommand runs the script with /bin/sh here), and an S3
// served over HTTP so the instance side's curl really fetches and puts presigned URLs. The
// real services are exercised by TestAcceptance (ZOPS_AWS_ACCEPTANCE=1).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

type fakeAWS struct {
	mu        sync.Mutex
	params    map[string]string
	images    map[string]*ec2types.Image
	instances map[string]*ec2types.Instance
	objects   map[string][]byte
	commands  map[string]*fakeCommand
	calls     []string
	seq       int
	srv       *httptest.Server
	// rejectImageParameter makes PutParameter succeed while the value never appears, as SSM
	// does when it rejects an aws:ec2:image value asynchronously.
	rejectImageParameter bool
}

type fakeCommand struct {
	done   bool
	code   int
	stdout string
	stderr string
	polled int
}

func newFakeAWS(t *testing.T) *fakeAWS {
	f := &fakeAWS{
		params:    map[string]string{DefaultSourceParameter: "ami-base"},
		images:    map[string]*ec2types.Image{"ami-base": {ImageId: aws.String("ami-base"), Name: aws.String("al2023-ami-2023.6-arm64"), State: ec2types.ImageStateAvailable}},
		instances: map[string]*ec2types.Instance{},
		objects:   map[string][]byte{},
		commands:  map[string]*fakeCommand{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveS3))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAWS) clients() *Clients { return &Clients{EC2: f, SSM: f, S3: f, Presign: f} }

func (f *fakeAWS) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

func (f *fakeAWS) called(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeAWS) next(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s-%04d", prefix, f.seq)
}

// --- S3 over HTTP (presigned URLs point here) and the S3 API on the same objects.

func (f *fakeAWS) serveS3(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, "/bucket/")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		f.objects[key] = b
	case http.MethodGet:
		b, ok := f.objects[key]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}
}

func (f *fakeAWS) PresignGetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error) {
	return &v4.PresignedHTTPRequest{URL: f.srv.URL + "/bucket/" + aws.ToString(in.Key) + "?X-Amz-Signature=x", Method: "GET"}, nil
}

func (f *fakeAWS) PresignPutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error) {
	return &v4.PresignedHTTPRequest{URL: f.srv.URL + "/bucket/" + aws.ToString(in.Key) + "?X-Amz-Signature=x", Method: "PUT"}, nil
}

func (f *fakeAWS) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, _ := io.ReadAll(in.Body)
	f.mu.Lock()
	f.objects[aws.ToString(in.Key)] = b
	f.mu.Unlock()
	f.record("PutObject")
	return &s3.PutObjectOutput{}, nil
}

func (f *fakeAWS) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objects[aws.ToString(in.Key)]
	if !ok {
		return nil, errors.New("NoSuchKey")
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func (f *fakeAWS) DeleteObject(_ context.Context, in *s3.DeleteObjectInput, _ ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	f.mu.Lock()
	delete(f.objects, aws.ToString(in.Key))
	f.mu.Unlock()
	f.record("DeleteObject")
	return &s3.DeleteObjectOutput{}, nil
}

func (f *fakeAWS) objectKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var k []string
	for key := range f.objects {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// --- SSM

func (f *fakeAWS) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.params[aws.ToString(in.Name)]
	if !ok {
		return nil, &ssmtypes.ParameterNotFound{Message: aws.String("not found")}
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String(v)}}, nil
}

func (f *fakeAWS) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	f.record("PutParameter " + aws.ToString(in.Name) + "=" + aws.ToString(in.Value) + " " + aws.ToString(in.DataType))
	f.mu.Lock()
	defer f.mu.Unlock()
	if aws.ToString(in.DataType) == "aws:ec2:image" && f.rejectImageParameter {
		return &ssm.PutParameterOutput{}, nil
	}
	f.params[aws.ToString(in.Name)] = aws.ToString(in.Value)
	return &ssm.PutParameterOutput{}, nil
}

func (f *fakeAWS) DescribeInstanceInformation(_ context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	id := in.Filters[0].Values[0]
	f.mu.Lock()
	defer f.mu.Unlock()
	if i, ok := f.instances[id]; ok && i.State.Name == ec2types.InstanceStateNameRunning {
		return &ssm.DescribeInstanceInformationOutput{InstanceInformationList: []ssmtypes.InstanceInformation{{InstanceId: aws.String(id), PingStatus: ssmtypes.PingStatusOnline}}}, nil
	}
	return &ssm.DescribeInstanceInformationOutput{}, nil
}

func (f *fakeAWS) SendCommand(_ context.Context, in *ssm.SendCommandInput, _ ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	f.record("SendCommand")
	if aws.ToString(in.DocumentName) != "AWS-RunShellScript" {
		return nil, fmt.Errorf("unexpected document %s", aws.ToString(in.DocumentName))
	}
	f.mu.Lock()
	id := f.next("cmd")
	c := &fakeCommand{}
	f.commands[id] = c
	f.mu.Unlock()
	script := strings.Join(in.Parameters["commands"], "\n")
	go func() {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		f.mu.Lock()
		// GetCommandInvocation truncates: 24,000 characters of stdout, 8,000 of stderr.
		c.stdout, c.stderr = truncate(stdout.String(), 24000), truncate(stderr.String(), 8000)
		c.code, c.done = code, true
		f.mu.Unlock()
	}()
	return &ssm.SendCommandOutput{Command: &ssmtypes.Command{CommandId: aws.String(id)}}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (f *fakeAWS) GetCommandInvocation(_ context.Context, in *ssm.GetCommandInvocationInput, _ ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.commands[aws.ToString(in.CommandId)]
	c.polled++
	if c.polled == 1 {
		return nil, &ssmtypes.InvocationDoesNotExist{}
	}
	if !c.done {
		return &ssm.GetCommandInvocationOutput{Status: ssmtypes.CommandInvocationStatusInProgress, ResponseCode: -1}, nil
	}
	st := ssmtypes.CommandInvocationStatusSuccess
	if c.code != 0 {
		st = ssmtypes.CommandInvocationStatusFailed
	}
	return &ssm.GetCommandInvocationOutput{Status: st, ResponseCode: int32(c.code), StandardOutputContent: aws.String(c.stdout), StandardErrorContent: aws.String(c.stderr)}, nil
}

// --- EC2

func (f *fakeAWS) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	f.record("RunInstances " + aws.ToString(in.ImageId))
	if in.IamInstanceProfile == nil || aws.ToString(in.IamInstanceProfile.Name) == "" {
		return nil, errors.New("no instance profile")
	}
	// As the ami role of infra/ demands: the instance and its volumes carry the build tag.
	for _, rt := range []ec2types.ResourceType{ec2types.ResourceTypeInstance, ec2types.ResourceTypeVolume} {
		ok := false
		for _, ts := range in.TagSpecifications {
			ok = ok || (ts.ResourceType == rt && hasTag(ts.Tags, "zmanim:ami-build", "prod"))
		}
		if !ok {
			return nil, fmt.Errorf("UnauthorizedOperation: %s not tagged zmanim:ami-build=prod", rt)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.next("i")
	i := &ec2types.Instance{InstanceId: aws.String(id), ImageId: in.ImageId, State: &ec2types.InstanceState{Name: ec2types.InstanceStateNamePending}}
	f.instances[id] = i
	return &ec2.RunInstancesOutput{Instances: []ec2types.Instance{*i}}, nil
}

// DescribeInstances moves pending/stopping/shutting-down instances on, one call at a time.
func (f *fakeAWS) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var r ec2types.Reservation
	for id, i := range f.instances {
		match := len(in.InstanceIds) == 0
		for _, want := range in.InstanceIds {
			match = match || want == id
		}
		for _, flt := range in.Filters {
			switch aws.ToString(flt.Name) {
			case "image-id":
				match = match && contains(flt.Values, aws.ToString(i.ImageId))
			case "instance-state-name":
				match = match && contains(flt.Values, string(i.State.Name))
			}
		}
		if !match {
			continue
		}
		switch i.State.Name {
		case ec2types.InstanceStateNamePending:
			i.State.Name = ec2types.InstanceStateNameRunning
		case ec2types.InstanceStateNameStopping:
			i.State.Name = ec2types.InstanceStateNameStopped
		case ec2types.InstanceStateNameShuttingDown:
			i.State.Name = ec2types.InstanceStateNameTerminated
		}
		r.Instances = append(r.Instances, *i)
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{r}}, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (f *fakeAWS) setState(ids []string, s ec2types.InstanceStateName) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		i, ok := f.instances[id]
		if !ok {
			return fmt.Errorf("InvalidInstanceID.NotFound: %s", id)
		}
		i.State.Name = s
	}
	return nil
}

func (f *fakeAWS) StopInstances(_ context.Context, in *ec2.StopInstancesInput, _ ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error) {
	f.record("StopInstances")
	return &ec2.StopInstancesOutput{}, f.setState(in.InstanceIds, ec2types.InstanceStateNameStopping)
}

func (f *fakeAWS) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	f.record("TerminateInstances")
	return &ec2.TerminateInstancesOutput{}, f.setState(in.InstanceIds, ec2types.InstanceStateNameShuttingDown)
}

func (f *fakeAWS) CreateImage(_ context.Context, in *ec2.CreateImageInput, _ ...func(*ec2.Options)) (*ec2.CreateImageOutput, error) {
	f.record("CreateImage")
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := f.instances[aws.ToString(in.InstanceId)]; i == nil || i.State.Name != ec2types.InstanceStateNameStopped {
		return nil, errors.New("test: image of an instance that is not stopped")
	}
	id := f.next("ami")
	var tags []ec2types.Tag
	for _, ts := range in.TagSpecifications {
		if ts.ResourceType == ec2types.ResourceTypeImage {
			tags = ts.Tags
		}
	}
	f.images[id] = &ec2types.Image{ImageId: aws.String(id), Name: in.Name, State: ec2types.ImageStatePending, Tags: tags,
		CreationDate:        aws.String(time.Now().UTC().Format(time.RFC3339)),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String("snap-" + id)}}}}
	return &ec2.CreateImageOutput{ImageId: aws.String(id)}, nil
}

func (f *fakeAWS) addImage(id, family, created string) {
	f.images[id] = &ec2types.Image{ImageId: aws.String(id), Name: aws.String(family + "-" + id), State: ec2types.ImageStateAvailable,
		CreationDate: aws.String(created), Tags: []ec2types.Tag{{Key: aws.String("zops:image"), Value: aws.String(family)}}}
}

func (f *fakeAWS) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ec2types.Image
	for id, im := range f.images {
		if len(in.ImageIds) > 0 && !contains(in.ImageIds, id) {
			continue
		}
		match := true
		for _, flt := range in.Filters {
			k := strings.TrimPrefix(aws.ToString(flt.Name), "tag:")
			has := false
			for _, t := range im.Tags {
				has = has || (aws.ToString(t.Key) == k && contains(flt.Values, aws.ToString(t.Value)))
			}
			match = match && has
		}
		if !match {
			continue
		}
		out = append(out, *im)
		if im.State == ec2types.ImageStatePending {
			im.State = ec2types.ImageStateAvailable
		}
	}
	return &ec2.DescribeImagesOutput{Images: out}, nil
}

func (f *fakeAWS) DeregisterImage(_ context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	f.record("DeregisterImage " + aws.ToString(in.ImageId))
	if !aws.ToBool(in.DeleteAssociatedSnapshots) {
		return nil, errors.New("test: snapshots left behind")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.images, aws.ToString(in.ImageId))
	return &ec2.DeregisterImageOutput{}, nil
}

func (f *fakeAWS) liveInstances() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id, i := range f.instances {
		if i.State.Name != ec2types.InstanceStateNameTerminated {
			out = append(out, id+"="+string(i.State.Name))
		}
	}
	return out
}

type ec2typesInstance = ec2types.Instance

func mkInstance(id, image, state string) *ec2types.Instance {
	return &ec2types.Instance{InstanceId: aws.String(id), ImageId: aws.String(image), State: &ec2types.InstanceState{Name: ec2types.InstanceStateName(state)}}
}

func hasTag(tags []ec2types.Tag, k, v string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == k && aws.ToString(t.Value) == v {
			return true
		}
	}
	return false
}
