package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// cloud is a fake of the parts of EC2, Auto Scaling, SSM and Cloud Map a rollout touches,
// keeping their rules: the group holds one instance; a refresh with min healthy 0 terminates
// it (which detaches the data volume) before it launches one from the image in the
// parameter; the new instance's first boot claims the volume only when it is free and never
// formats it (the data token stays). No local emulator offers Auto Scaling instance refresh
// or EBS attachments (kumo has neither), hence the fake; the real calls run in the
// acceptance test with ZOPS_AWS_ACCEPTANCE=1.
type cloud struct {
	mu        sync.Mutex
	images    map[string]ec2types.ArchitectureValues
	bad       map[string]bool // images whose box never answers /health
	param     string
	instances map[string]string // id -> image (running)
	box       string            // the group's instance
	holder    string            // volume attachment
	stray     string            // an instance outside the group holding the volume
	data      string            // what is on the volume
	n         int
	puts      []string
	refreshes int
	deregs    int
	stops     []string
	formats   int
}

func newCloud() *cloud {
	return &cloud{
		images:    map[string]ec2types.ArchitectureValues{"ami-old": "arm64", "ami-new": "arm64", "ami-bad": "arm64", "ami-x86": "x86_64"},
		bad:       map[string]bool{"ami-bad": true},
		param:     "ami-old",
		instances: map[string]string{"i-1": "ami-old"},
		box:       "i-1",
		holder:    "i-1",
		data:      "rows=163000",
		n:         1,
	}
}

func (c *cloud) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	arch, ok := c.images[in.ImageIds[0]]
	if !ok {
		return nil, fmt.Errorf("api error InvalidAMIID.NotFound: %s", in.ImageIds[0])
	}
	return &ec2.DescribeImagesOutput{Images: []ec2types.Image{{ImageId: aws.String(in.ImageIds[0]), Name: aws.String("zmanim-box"), State: ec2types.ImageStateAvailable, Architecture: arch,
		Tags: []ec2types.Tag{{Key: aws.String(TagRecipeHash), Value: aws.String("hash-" + in.ImageIds[0])}}}}}, nil
}

func (c *cloud) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img, ok := c.instances[in.InstanceIds[0]]
	if !ok {
		return &ec2.DescribeInstancesOutput{}, nil
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: []ec2types.Instance{{InstanceId: aws.String(in.InstanceIds[0]), ImageId: aws.String(img)}}}}}, nil
}

func (c *cloud) DescribeInstanceStatus(_ context.Context, in *ec2.DescribeInstanceStatusInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
	ok := &ec2types.InstanceStatusSummary{Status: ec2types.SummaryStatusOk}
	return &ec2.DescribeInstanceStatusOutput{InstanceStatuses: []ec2types.InstanceStatus{{InstanceId: aws.String(in.InstanceIds[0]), InstanceStatus: ok, SystemStatus: ok}}}, nil
}

func (c *cloud) DescribeVolumes(_ context.Context, in *ec2.DescribeVolumesInput, _ ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := ec2types.Volume{VolumeId: aws.String("vol-data"), AvailabilityZone: aws.String("eu-west-1a"), State: ec2types.VolumeStateAvailable}
	for _, h := range []string{c.holder, c.stray} {
		if h != "" {
			v.State = ec2types.VolumeStateInUse
			v.Attachments = append(v.Attachments, ec2types.VolumeAttachment{InstanceId: aws.String(h), State: ec2types.VolumeAttachmentStateAttached})
		}
	}
	return &ec2.DescribeVolumesOutput{Volumes: []ec2types.Volume{v}}, nil
}

func (c *cloud) DescribeAutoScalingGroups(context.Context, *autoscaling.DescribeAutoScalingGroupsInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := astypes.AutoScalingGroup{AutoScalingGroupName: aws.String("zmanim-prod-box"), MaxSize: aws.Int32(1), MinSize: aws.Int32(1), AvailabilityZones: []string{"eu-west-1a"}}
	if c.box != "" {
		g.Instances = []astypes.Instance{{InstanceId: aws.String(c.box), LifecycleState: astypes.LifecycleStateInService}}
	}
	return &autoscaling.DescribeAutoScalingGroupsOutput{AutoScalingGroups: []astypes.AutoScalingGroup{g}}, nil
}

func (c *cloud) StartInstanceRefresh(_ context.Context, in *autoscaling.StartInstanceRefreshInput, _ ...func(*autoscaling.Options)) (*autoscaling.StartInstanceRefreshOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := in.Preferences
	if p == nil || aws.ToInt32(p.MinHealthyPercentage) != 0 || aws.ToInt32(p.MaxHealthyPercentage) != 100 {
		return nil, errors.New("refresh would run two boxes at once: want min healthy 0, max healthy 100")
	}
	c.refreshes++
	// Terminate first: the volume detaches.
	delete(c.instances, c.box)
	if c.holder == c.box {
		c.holder = ""
	}
	// Launch from the image in the parameter; first boot claims a free volume.
	c.n++
	id := fmt.Sprintf("i-%d", c.n)
	c.instances[id] = c.param
	c.box = id
	if c.holder == "" && c.stray == "" {
		c.holder = id
	}
	return &autoscaling.StartInstanceRefreshOutput{InstanceRefreshId: aws.String(fmt.Sprintf("ir-%d", c.refreshes))}, nil
}

func (c *cloud) DescribeInstanceRefreshes(_ context.Context, in *autoscaling.DescribeInstanceRefreshesInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeInstanceRefreshesOutput, error) {
	return &autoscaling.DescribeInstanceRefreshesOutput{InstanceRefreshes: []astypes.InstanceRefresh{{InstanceRefreshId: aws.String(in.InstanceRefreshIds[0]), Status: astypes.InstanceRefreshStatusSuccessful}}}, nil
}

func (c *cloud) GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.param == "" {
		return nil, &ssmtypes.ParameterNotFound{}
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Value: aws.String(c.param)}}, nil
}

func (c *cloud) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if aws.ToString(in.DataType) != "aws:ec2:image" {
		return nil, errors.New("the image parameter must keep DataType aws:ec2:image")
	}
	c.param = aws.ToString(in.Value)
	c.puts = append(c.puts, c.param)
	return &ssm.PutParameterOutput{}, nil
}

func (c *cloud) DeregisterInstance(context.Context, *servicediscovery.DeregisterInstanceInput, ...func(*servicediscovery.Options)) (*servicediscovery.DeregisterInstanceOutput, error) {
	c.deregs++
	return &servicediscovery.DeregisterInstanceOutput{}, nil
}

func (c *cloud) Stop(_ context.Context, id string) error {
	c.stops = append(c.stops, id)
	return nil
}

func (c *cloud) health(context.Context) (Health, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.instances[c.box]
	if c.bad[img] || c.holder != c.box {
		return Health{Status: 503}, nil
	}
	return Health{Status: 200, Version: "v1.2.3", RecipeHash: "hash-" + img}, nil
}

func rollout(c *cloud, image string, out *bytes.Buffer) *Rollout {
	return &Rollout{
		Group: "zmanim-prod-box", Param: "/zmanim/prod/ami-id", VolumeID: "vol-data", ServiceID: "srv-box", Image: image,
		EC2: c, ASG: c, SSM: c, CloudMap: c, Stopper: c, Health: c.health,
		VolumeWait: 30 * time.Millisecond, RefreshWait: time.Second, HealthWait: 30 * time.Millisecond, ParamWait: time.Second,
		Poll: time.Millisecond, Out: out,
	}
}

func TestRolloutHappyPath(t *testing.T) {
	c := newCloud()
	var out bytes.Buffer
	res, err := rollout(c, "ami-new", &out).Run(context.Background())
	if err != nil {
		t.Fatalf("rollout: %v\n%s", err, out.String())
	}
	if c.param != "ami-new" || c.refreshes != 1 || c.deregs != 1 || strings.Join(c.stops, ",") != "i-1" {
		t.Fatalf("param %s refreshes %d deregs %d stops %v", c.param, c.refreshes, c.deregs, c.stops)
	}
	if res.OldInstance != "i-1" || res.NewInstance != "i-2" || res.From != "ami-old" || res.To != "ami-new" || res.RecipeHash != "hash-ami-new" || res.RolledBack {
		t.Fatalf("result %+v", res)
	}
	if c.holder != "i-2" || c.data != "rows=163000" || c.formats != 0 {
		t.Fatalf("volume on %s with %q (formatted %d times)", c.holder, c.data, c.formats)
	}
	for _, want := range []string{"check the image", "stop traffic", "instance refresh, min healthy 0", "/health: 200, version v1.2.3, recipe hash hash-ami-new", "ok ("} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if len(res.Steps) != 9 {
		t.Errorf("%d timed steps, want 9: %+v", len(res.Steps), res.Steps)
	}
	// Again: the box already runs it, nothing changes.
	res, err = rollout(c, "", &out).Run(context.Background())
	if err != nil || c.refreshes != 1 || res.From != "ami-new" {
		t.Fatalf("second rollout: %v, refreshes %d, %+v", err, c.refreshes, res)
	}
}

func TestRolloutNewBoxNeverHealthyRollsBack(t *testing.T) {
	c := newCloud()
	var out bytes.Buffer
	res, err := rollout(c, "ami-bad", &out).Run(context.Background())
	if !errors.Is(err, ErrRolledBack) || !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("err = %v, want ErrRolledBack wrapping ErrUnhealthy\n%s", err, out.String())
	}
	if strings.Join(c.puts, ",") != "ami-bad,ami-old" || c.param != "ami-old" || c.refreshes != 2 {
		t.Fatalf("puts %v param %s refreshes %d", c.puts, c.param, c.refreshes)
	}
	// Data intact: the same volume, never formatted, on the rolled-back box.
	if !res.RolledBack || c.instances[c.box] != "ami-old" || c.holder != c.box || res.VolumeAttachedTo != c.box || c.data != "rows=163000" || c.formats != 0 {
		t.Fatalf("after rollback: box %s on %s, volume on %s, data %q, result %+v", c.box, c.instances[c.box], c.holder, c.data, res)
	}
	if !strings.Contains(out.String(), "rolling back to ami-old") || !strings.Contains(err.Error(), "vol-data") {
		t.Errorf("rollback not reported:\n%s\n%v", out.String(), err)
	}
}

func TestRolloutVolumeHeldElsewhereWaitsThenFails(t *testing.T) {
	c := newCloud()
	c.stray = "i-stray"
	var out bytes.Buffer
	_, err := rollout(c, "ami-new", &out).Run(context.Background())
	if !errors.Is(err, ErrVolumeHeld) || !strings.Contains(err.Error(), "i-stray") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("err = %v, want ErrVolumeHeld naming i-stray", err)
	}
	if !strings.Contains(out.String(), "attached to i-stray, not the box i-1: waiting") {
		t.Errorf("did not wait visibly:\n%s", out.String())
	}
	if len(c.puts) != 0 || c.refreshes != 0 || c.deregs != 0 || len(c.stops) != 0 {
		t.Fatalf("something changed: puts %v refreshes %d deregs %d stops %v", c.puts, c.refreshes, c.deregs, c.stops)
	}
}

func TestRolloutRefusesBeforeAnythingChanges(t *testing.T) {
	for _, tc := range []struct {
		image string
		want  error
	}{
		{"ami-x86", ErrWrongArch},
		{"ami-nope", ErrNoImage},
	} {
		c := newCloud()
		var out bytes.Buffer
		_, err := rollout(c, tc.image, &out).Run(context.Background())
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: err = %v, want %v", tc.image, err, tc.want)
		}
		if len(c.puts) != 0 || c.refreshes != 0 || c.deregs != 0 || len(c.stops) != 0 || c.param != "ami-old" {
			t.Fatalf("%s: something changed: puts %v refreshes %d deregs %d stops %v", tc.image, c.puts, c.refreshes, c.deregs, c.stops)
		}
	}
}

// A group that could hold two boxes is refused: they would fight over the volume.
func TestRolloutRefusesGroupOfTwo(t *testing.T) {
	c := newCloud()
	r := rollout(c, "ami-new", &bytes.Buffer{})
	r.ASG = twoGroup{c}
	_, err := r.Run(context.Background())
	if !errors.Is(err, ErrGroup) || c.refreshes != 0 {
		t.Fatalf("err = %v refreshes %d", err, c.refreshes)
	}
}

type twoGroup struct{ *cloud }

func (g twoGroup) DescribeAutoScalingGroups(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, o ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	out, err := g.cloud.DescribeAutoScalingGroups(ctx, in, o...)
	out.AutoScalingGroups[0].MaxSize = aws.Int32(2)
	return out, err
}
