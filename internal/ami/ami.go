// Package ami lists and prunes the box's machine images: the AMIs the zops-ec2 Packer builder
// made (tagged zops:image=<name>), which one the image parameter in SSM points at, and which
// ones instances were launched from. An image in use, by an instance or by the parameter, is
// never deleted. Deleting deregisters the image together with its snapshots
// (DeregisterImage DeleteAssociatedSnapshots).
//
// It depends on the AWS SDK only, so the Packer plugin (packer/, its own module) uses the same
// code for the prune step of its build.
package ami

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Tags the zops-ec2 builder puts on every image (and its snapshots).
const (
	TagImage      = "zops:image" // image family, e.g. zmanim-box: what List and Prune look at
	TagVersion    = "zops:version"
	TagCommit     = "zops:commit"
	TagRecipeHash = "zops:recipe-hash"
)

// EC2API is the part of EC2 that listing and pruning need.
type EC2API interface {
	// DescribeImages lists images; called with Owners=self and a tag filter.
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	// DescribeInstances lists the instances launched from the listed images (any state but
	// terminated: a stopped instance still needs its image to be replaced like for like).
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	// DeregisterImage deletes an image; with DeleteAssociatedSnapshots its snapshots too.
	DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, optFns ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error)
}

// ParameterAPI reads the image parameter.
type ParameterAPI interface {
	// GetParameter returns the parameter or a *ssmtypes.ParameterNotFound error.
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var (
	_ EC2API       = (*ec2.Client)(nil)
	_ ParameterAPI = (*ssm.Client)(nil)
)

var (
	// ErrImageInUse refuses deleting an image an instance or the parameter uses.
	ErrImageInUse = errors.New("image is in use")
	// ErrUnknownImage means an id asked for is not one of the family's images.
	ErrUnknownImage = errors.New("not an image of this family")
)

// Image is one image of the family.
type Image struct {
	ID        string
	Name      string
	State     string
	Created   time.Time
	Tags      map[string]string
	Snapshots []string
	Instances []string // instances launched from it that are not terminated
	Published bool     // the image parameter points at it
}

// InUse reports whether deleting the image would break something.
func (i Image) InUse() bool { return i.Published || len(i.Instances) > 0 }

// UsedBy says who uses the image, for messages.
func (i Image) UsedBy() string {
	var by []string
	if i.Published {
		by = append(by, "the image parameter")
	}
	if len(i.Instances) > 0 {
		by = append(by, "instance "+strings.Join(i.Instances, ", "))
	}
	return strings.Join(by, " and ")
}

// Family selects the images: those tagged zops:image=Name, and the parameter publishing one.
type Family struct {
	Name      string // e.g. zmanim-box
	Parameter string // e.g. /zmanim/prod/ami-id; empty: none
}

// Listing is the family's images, newest first, and the parameter's value.
type Listing struct {
	Images    []Image
	Parameter string // value of the image parameter ("" when it does not exist)
}

// List reads the family's images, the parameter and the instances using them.
func List(ctx context.Context, e EC2API, p ParameterAPI, f Family) (*Listing, error) {
	if f.Name == "" {
		return nil, errors.New("list images: no image family name")
	}
	l := &Listing{}
	if f.Parameter != "" && p != nil {
		out, err := p.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(f.Parameter)})
		var nf *ssmtypes.ParameterNotFound
		switch {
		case errors.As(err, &nf):
		case err != nil:
			return nil, fmt.Errorf("read image parameter %s: %w", f.Parameter, err)
		default:
			l.Parameter = aws.ToString(out.Parameter.Value)
		}
	}
	in := &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + TagImage), Values: []string{f.Name}}},
	}
	for {
		out, err := e.DescribeImages(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list images tagged %s=%s: %w", TagImage, f.Name, err)
		}
		for _, im := range out.Images {
			l.Images = append(l.Images, fromEC2(im, l.Parameter))
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	if err := markInstances(ctx, e, l.Images); err != nil {
		return nil, err
	}
	sort.SliceStable(l.Images, func(i, j int) bool { return l.Images[i].Created.After(l.Images[j].Created) })
	return l, nil
}

func fromEC2(im ec2types.Image, param string) Image {
	out := Image{ID: aws.ToString(im.ImageId), Name: aws.ToString(im.Name), State: string(im.State), Tags: map[string]string{}}
	out.Created, _ = time.Parse(time.RFC3339, aws.ToString(im.CreationDate))
	for _, t := range im.Tags {
		out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for _, b := range im.BlockDeviceMappings {
		if b.Ebs != nil && aws.ToString(b.Ebs.SnapshotId) != "" {
			out.Snapshots = append(out.Snapshots, aws.ToString(b.Ebs.SnapshotId))
		}
	}
	out.Published = param != "" && param == out.ID
	return out
}

func markInstances(ctx context.Context, e EC2API, images []Image) error {
	if len(images) == 0 {
		return nil
	}
	byID := map[string]*Image{}
	ids := make([]string, 0, len(images))
	for i := range images {
		byID[images[i].ID] = &images[i]
		ids = append(ids, images[i].ID)
	}
	in := &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("image-id"), Values: ids},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}},
	}}
	for {
		out, err := e.DescribeInstances(ctx, in)
		if err != nil {
			return fmt.Errorf("find instances using the images: %w", err)
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if im := byID[aws.ToString(i.ImageId)]; im != nil {
					im.Instances = append(im.Instances, aws.ToString(i.InstanceId))
				}
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return nil
		}
		in.NextToken = out.NextToken
	}
}

// Plan is what a prune would do.
type Plan struct {
	Delete []Image
	Keep   []Keep
}

// Keep is an image a prune leaves, and why.
type Keep struct {
	Image  Image
	Reason string
}

// PlanPrune keeps the newest `keep` images and every image in use; the rest go.
func PlanPrune(l *Listing, keep int) Plan {
	var p Plan
	for i, im := range l.Images {
		switch {
		case i < keep:
			p.Keep = append(p.Keep, Keep{im, fmt.Sprintf("one of the newest %d", keep)})
		case im.InUse():
			p.Keep = append(p.Keep, Keep{im, "in use by " + im.UsedBy()})
		default:
			p.Delete = append(p.Delete, im)
		}
	}
	return p
}

// PlanDelete deletes exactly the given images, refusing the whole request (nothing deleted)
// when any of them is in use or not one of the family's.
func PlanDelete(l *Listing, ids []string) (Plan, error) {
	byID := map[string]Image{}
	for _, im := range l.Images {
		byID[im.ID] = im
	}
	var p Plan
	var errs []error
	for _, id := range ids {
		im, ok := byID[id]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%w: %s (see `go tool mage ami:list`)", ErrUnknownImage, id))
		case im.InUse():
			errs = append(errs, fmt.Errorf("refusing to delete %s: %w by %s; publish another image or replace the instance first", id, ErrImageInUse, im.UsedBy()))
		default:
			p.Delete = append(p.Delete, im)
		}
	}
	if len(errs) > 0 {
		return Plan{}, errors.Join(errs...)
	}
	return p, nil
}

// Apply deletes the plan's images with their snapshots, printing one line per image. With
// dryRun it only prints what would go.
func Apply(ctx context.Context, e EC2API, p Plan, dryRun bool, w io.Writer) error {
	for _, k := range p.Keep {
		fmt.Fprintf(w, "keep   %s %s (%s)\n", k.Image.ID, k.Image.Name, k.Reason)
	}
	var errs []error
	for _, im := range p.Delete {
		if im.InUse() {
			// Plans are built from a listing; this guards a hand-made plan.
			errs = append(errs, fmt.Errorf("refusing to delete %s: %w by %s", im.ID, ErrImageInUse, im.UsedBy()))
			continue
		}
		if dryRun {
			fmt.Fprintf(w, "would delete %s %s and snapshots %s (dry run)\n", im.ID, im.Name, strings.Join(im.Snapshots, ","))
			continue
		}
		_, err := e.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(im.ID), DeleteAssociatedSnapshots: aws.Bool(true)})
		if err != nil {
			errs = append(errs, fmt.Errorf("delete image %s: %w", im.ID, err))
			continue
		}
		fmt.Fprintf(w, "deleted %s %s and snapshots %s\n", im.ID, im.Name, strings.Join(im.Snapshots, ","))
	}
	return errors.Join(errs...)
}

// WriteTable prints the listing: one row per image with its tags and who uses it.
func WriteTable(w io.Writer, l *Listing, f Family) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tCREATED\tSTATE\tVERSION\tCOMMIT\tRECIPE\tIN USE")
	for _, im := range l.Images {
		use := im.UsedBy()
		if use == "" {
			use = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", im.ID, im.Created.UTC().Format(time.RFC3339), im.State,
			dash(im.Tags[TagVersion]), dash(im.Tags[TagCommit]), dash(im.Tags[TagRecipeHash]), use)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case f.Parameter == "":
	case l.Parameter == "":
		fmt.Fprintf(w, "parameter %s: not set\n", f.Parameter)
	default:
		fmt.Fprintf(w, "parameter %s -> %s\n", f.Parameter, l.Parameter)
	}
	fmt.Fprintf(w, "images: %d\n", len(l.Images))
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
