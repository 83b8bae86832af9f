package ami

// No local emulator implements EC2 CreateImage/DeregisterImage with snapshots (kumo has no
// image lifecycle), so these tests run over a fake of the three EC2 calls and GetParameter;
// the real calls run in the acceptance test of the zops-ec2 builder (ZOPS_AWS_ACCEPTANCE=1).

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

type fakeEC2 struct {
	images       []ec2types.Image
	instances    map[string]string // instance id -> image id
	deregistered []string
	pageSize     int
}

func (f *fakeEC2) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	var match []ec2types.Image
	for _, im := range f.images {
		if hasTag(im.Tags, TagImage, in.Filters[0].Values[0]) {
			match = append(match, im)
		}
	}
	start := 0
	if in.NextToken != nil {
		start = len(aws.ToString(in.NextToken))
	}
	end := len(match)
	out := &ec2.DescribeImagesOutput{}
	if f.pageSize > 0 && start+f.pageSize < end {
		end = start + f.pageSize
		out.NextToken = aws.String(strings.Repeat("x", end))
	}
	out.Images = match[start:end]
	return out, nil
}

func (f *fakeEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	ids := map[string]bool{}
	for _, v := range in.Filters[0].Values {
		ids[v] = true
	}
	var r ec2types.Reservation
	for inst, img := range f.instances {
		if ids[img] {
			r.Instances = append(r.Instances, ec2types.Instance{InstanceId: aws.String(inst), ImageId: aws.String(img)})
		}
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{r}}, nil
}

func (f *fakeEC2) DeregisterImage(_ context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	if !aws.ToBool(in.DeleteAssociatedSnapshots) {
		return nil, errors.New("test: snapshots would be left behind")
	}
	f.deregistered = append(f.deregistered, aws.ToString(in.ImageId))
	return &ec2.DeregisterImageOutput{}, nil
}

type fakeSSM struct{ value string }

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	if f.value == "" {
		return nil, &ssmtypes.ParameterNotFound{}
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String(f.value)}}, nil
}

func hasTag(tags []ec2types.Tag, k, v string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == k && aws.ToString(t.Value) == v {
			return true
		}
	}
	return false
}

func image(id, day, family string) ec2types.Image {
	return ec2types.Image{
		ImageId: aws.String(id), Name: aws.String("zmanim-box-" + id), State: ec2types.ImageStateAvailable,
		CreationDate:        aws.String("2026-11-" + day + "T10:00:00.000Z"),
		Tags:                []ec2types.Tag{{Key: aws.String(TagImage), Value: aws.String(family)}, {Key: aws.String(TagVersion), Value: aws.String("v" + day)}},
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String("snap-" + id)}}},
	}
}

// five images a1 (oldest) .. a5 (newest); a2 runs the box, the parameter names a1.
func fixture() (*fakeEC2, *fakeSSM) {
	e := &fakeEC2{pageSize: 2, instances: map[string]string{"i-box": "a2"}}
	for i, id := range []string{"a1", "a2", "a3", "a4", "a5"} {
		e.images = append(e.images, image(id, []string{"01", "02", "03", "04", "05"}[i], "zmanim-box"))
	}
	e.images = append(e.images, image("other", "06", "someone-else"))
	return e, &fakeSSM{value: "a1"}
}

var fam = Family{Name: "zmanim-box", Parameter: "/zmanim/prod/ami-id"}

func TestList(t *testing.T) {
	t.Parallel()
	e, s := fixture()
	l, err := List(context.Background(), e, s, fam)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, im := range l.Images {
		ids = append(ids, im.ID)
	}
	if got := strings.Join(ids, ","); got != "a5,a4,a3,a2,a1" {
		t.Fatalf("images (newest first, across pages, family only) = %s", got)
	}
	if !l.Images[4].Published || l.Images[3].Instances[0] != "i-box" || l.Images[0].InUse() {
		t.Errorf("use not marked: %+v", l.Images)
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, l, fam); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a2", "instance i-box", "the image parameter", "parameter /zmanim/prod/ami-id -> a1", "images: 5", "v05"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestListNoParameter(t *testing.T) {
	t.Parallel()
	e, _ := fixture()
	l, err := List(context.Background(), e, &fakeSSM{}, fam)
	if err != nil || l.Parameter != "" {
		t.Fatalf("missing parameter: %v %q", err, l.Parameter)
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	e, s := fixture()
	l, _ := List(context.Background(), e, s, fam)
	p := PlanPrune(l, 2)
	// a5, a4 newest; a2 (instance) and a1 (parameter) in use; only a3 goes.
	if len(p.Delete) != 1 || p.Delete[0].ID != "a3" {
		t.Fatalf("delete = %+v", p.Delete)
	}
	var out bytes.Buffer
	if err := Apply(context.Background(), e, p, true, &out); err != nil {
		t.Fatal(err)
	}
	if len(e.deregistered) != 0 || !strings.Contains(out.String(), "would delete a3") || !strings.Contains(out.String(), "keep   a1 zmanim-box-a1 (in use by the image parameter)") {
		t.Fatalf("dry run deleted %v or printed:\n%s", e.deregistered, out.String())
	}
	out.Reset()
	if err := Apply(context.Background(), e, p, false, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Join(e.deregistered, ",") != "a3" || !strings.Contains(out.String(), "deleted a3 zmanim-box-a3 and snapshots snap-a3") {
		t.Fatalf("deregistered %v:\n%s", e.deregistered, out.String())
	}
}

func TestDeleteInUseRefused(t *testing.T) {
	t.Parallel()
	e, s := fixture()
	l, _ := List(context.Background(), e, s, fam)
	for _, tt := range []struct {
		ids  []string
		want error
		msg  string
	}{
		{[]string{"a3", "a2"}, ErrImageInUse, "instance i-box"},
		{[]string{"a1"}, ErrImageInUse, "the image parameter"},
		{[]string{"ami-nope"}, ErrUnknownImage, "ami-nope"},
	} {
		_, err := PlanDelete(l, tt.ids)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("PlanDelete(%v) = %v, want %v mentioning %q", tt.ids, err, tt.want, tt.msg)
		}
	}
	if len(e.deregistered) != 0 {
		t.Fatal("a refused request deleted something")
	}
	p, err := PlanDelete(l, []string{"a3"})
	if err != nil || len(p.Delete) != 1 {
		t.Fatalf("deleting an unused image: %v", err)
	}
	// A hand-made plan with an image in use is refused at apply time too.
	err = Apply(context.Background(), e, Plan{Delete: []Image{l.Images[3]}}, false, &bytes.Buffer{})
	if !errors.Is(err, ErrImageInUse) || len(e.deregistered) != 0 {
		t.Fatalf("Apply deleted an image in use: %v", err)
	}
}
