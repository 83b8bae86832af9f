// Package rollout is ami:rollout: it moves the production box to a new machine image the one
// way the stacks allow (infra/README.md, "Who replaces the box"): the box is the only
// instance of an Auto Scaling group whose launch template resolves the image from the SSM
// image parameter at launch, so a rollout publishes the image in the parameter and starts an
// instance refresh with minimum healthy 0 and maximum healthy 100 (the old instance is
// terminated before the new one starts: the data volume attaches to one instance at a time).
// The new box claims the volume, the Elastic IP and the Cloud Map entry itself at first boot
// (internal/firstboot/claim) and never formats a volume that holds data.
//
// The steps, each printed with its time: check the image (exists, available, arm64: refused
// before anything changes); check the data volume (in the group's zone, attached to nothing
// but the current box: waits, then fails clearly); publish the image; stop traffic (remove
// the box from Cloud Map, stop its services cleanly so PostgreSQL shuts down with a
// checkpoint); replace (instance refresh); wait for the new instance's status checks and
// image; wait for /health through the edge (with the image's recipe hash when the box
// reports one). A failure after the parameter changed rolls back: the previous image goes
// back into the parameter and a second refresh brings the old image up on the same volume.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// EC2API is what the rollout reads from EC2.
type EC2API interface {
	// DescribeImages returns the image with its state, architecture and tags.
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	// DescribeInstances returns an instance's image and state.
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	// DescribeInstanceStatus returns the instance and system status checks.
	DescribeInstanceStatus(ctx context.Context, in *ec2.DescribeInstanceStatusInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
	// DescribeVolumes returns the data volume's zone and attachments.
	DescribeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
}

// GroupAPI is the Auto Scaling group of the box.
type GroupAPI interface {
	// DescribeAutoScalingGroups returns the group with its instances.
	DescribeAutoScalingGroups(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, optFns ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
	// StartInstanceRefresh replaces the group's instances with the launch template's image.
	StartInstanceRefresh(ctx context.Context, in *autoscaling.StartInstanceRefreshInput, optFns ...func(*autoscaling.Options)) (*autoscaling.StartInstanceRefreshOutput, error)
	// DescribeInstanceRefreshes reports a refresh's status.
	DescribeInstanceRefreshes(ctx context.Context, in *autoscaling.DescribeInstanceRefreshesInput, optFns ...func(*autoscaling.Options)) (*autoscaling.DescribeInstanceRefreshesOutput, error)
}

// ParamAPI reads and writes the image parameter.
type ParamAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	// PutParameter with DataType aws:ec2:image is validated asynchronously: read it back.
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
}

// CloudMapAPI takes the box out of the API Gateway VPC link's service.
type CloudMapAPI interface {
	DeregisterInstance(ctx context.Context, in *servicediscovery.DeregisterInstanceInput, optFns ...func(*servicediscovery.Options)) (*servicediscovery.DeregisterInstanceOutput, error)
}

// Stopper stops the box's services cleanly before the instance is terminated (production:
// `systemctl stop zmanim.target` through SSM Run Command).
type Stopper interface {
	Stop(ctx context.Context, instanceID string) error
}

// Health is one /health answer through the edge.
type Health struct {
	Status     int
	Version    string
	RecipeHash string // "" when the box does not report it
}

// HealthFunc asks /health through the edge.
type HealthFunc func(ctx context.Context) (Health, error)

var (
	_ EC2API      = (*ec2.Client)(nil)
	_ GroupAPI    = (*autoscaling.Client)(nil)
	_ ParamAPI    = (*ssm.Client)(nil)
	_ CloudMapAPI = (*servicediscovery.Client)(nil)
)

// Errors of a rollout.
var (
	ErrNoImage          = errors.New("image not found or not available")
	ErrWrongArch        = errors.New("image has the wrong architecture")
	ErrVolumeHeld       = errors.New("the data volume is attached to an instance outside the box's group")
	ErrWrongZone        = errors.New("the data volume is not in the group's zone")
	ErrGroup            = errors.New("the box's Auto Scaling group is not as the stack builds it")
	ErrRefresh          = errors.New("instance refresh failed")
	ErrUnhealthy        = errors.New("the new box did not become healthy")
	ErrRolledBack       = errors.New("rollout failed and was rolled back to the previous image")
	ErrRollbackFailed   = errors.New("rollout failed and the rollback failed too")
	ErrAlreadyOnImage   = errors.New("the box already runs this image")
	ErrParameterInvalid = errors.New("the image parameter did not take the image")
)

// Arch is the box's architecture (Graviton).
const Arch = "arm64"

// TagRecipeHash is the image tag with the recipe hash (internal/ami.TagRecipeHash).
const TagRecipeHash = "zops:recipe-hash"

// Rollout is one ami:rollout.
type Rollout struct {
	Group     string // Auto Scaling group name
	Param     string // SSM image parameter the launch template resolves
	VolumeID  string // the data volume
	ServiceID string // Cloud Map service of the box
	Image     string // target image; "" = the parameter's current value
	Force     bool   // refresh even when the box already runs the image

	EC2      EC2API
	ASG      GroupAPI
	SSM      ParamAPI
	CloudMap CloudMapAPI
	Stopper  Stopper
	Health   HealthFunc

	VolumeWait    time.Duration // wait for a stray attachment to go (default 5m)
	RefreshWait   time.Duration // instance refresh (default 20m)
	HealthWait    time.Duration // status checks and /health of the new box (default 10m)
	Poll          time.Duration // default 10s
	ParamWait     time.Duration // read-back of the image parameter (default 2m)
	InstanceWarm  time.Duration // refresh warmup (default 60s)
	Out           io.Writer
	Now           func() time.Time
	CloudMapEntry string // instance id in Cloud Map (default "box", claim.CloudMapInstanceID)
}

// Result is what a rollout did.
type Result struct {
	From, To         string // images
	OldInstance      string
	NewInstance      string
	RecipeHash       string
	RolledBack       bool
	Seconds          float64
	Steps            []StepTime
	VolumeAttachedTo string
}

// StepTime is one printed step.
type StepTime struct {
	Name    string
	Seconds float64
	Err     error
}

func (r *Rollout) defaults() {
	if r.VolumeWait <= 0 {
		r.VolumeWait = 5 * time.Minute
	}
	if r.RefreshWait <= 0 {
		r.RefreshWait = 20 * time.Minute
	}
	if r.HealthWait <= 0 {
		r.HealthWait = 10 * time.Minute
	}
	if r.Poll <= 0 {
		r.Poll = 10 * time.Second
	}
	if r.ParamWait <= 0 {
		r.ParamWait = 2 * time.Minute
	}
	if r.InstanceWarm <= 0 {
		r.InstanceWarm = 60 * time.Second
	}
	if r.Out == nil {
		r.Out = io.Discard
	}
	if r.CloudMapEntry == "" {
		r.CloudMapEntry = "box"
	}
}

func (r *Rollout) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Rollout) sleep(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(r.Poll):
		return nil
	}
}

// step is one printed, timed part of the rollout.
type step struct {
	name string
	run  func(ctx context.Context) error
}

func (r *Rollout) runSteps(ctx context.Context, res *Result, steps []step) error {
	for _, s := range steps {
		t := time.Now()
		fmt.Fprintf(r.Out, "==> %s\n", s.name)
		err := s.run(ctx)
		st := StepTime{Name: s.name, Seconds: time.Since(t).Seconds(), Err: err}
		res.Steps = append(res.Steps, st)
		if err != nil {
			fmt.Fprintf(r.Out, "    FAILED after %.1fs: %v\n", st.Seconds, err)
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintf(r.Out, "    ok (%.1fs)\n", st.Seconds)
	}
	return nil
}

// Run performs the rollout. Nothing changes until the image and the volume checks pass; a
// failure after that rolls back to the previous image.
func (r *Rollout) Run(ctx context.Context) (Result, error) {
	r.defaults()
	start := time.Now()
	var res Result
	defer func() { res.Seconds = time.Since(start).Seconds() }()

	var previous string // the parameter before the rollout
	var group *astypes.AutoScalingGroup
	checks := []step{
		{"read the group, its box and the image parameter", func(ctx context.Context) error {
			var err error
			if group, err = r.group(ctx); err != nil {
				return err
			}
			if previous, err = r.param(ctx); err != nil {
				return err
			}
			if len(group.Instances) == 1 {
				res.OldInstance = aws.ToString(group.Instances[0].InstanceId)
				res.From, err = r.instanceImage(ctx, res.OldInstance)
				if err != nil {
					return err
				}
			}
			if r.Image == "" {
				r.Image = previous
			}
			res.To = r.Image
			fmt.Fprintf(r.Out, "    group %s: box %s on %s; parameter %s = %s; target %s\n", r.Group, or(res.OldInstance, "(none)"), or(res.From, "-"), r.Param, previous, r.Image)
			return nil
		}},
		{"check the image (exists, available, " + Arch + ")", func(ctx context.Context) error {
			h, err := r.checkImage(ctx, r.Image)
			res.RecipeHash = h
			return err
		}},
		{"check the data volume (group's zone, held by no other instance)", func(ctx context.Context) error {
			return r.checkVolume(ctx, group, res.OldInstance)
		}},
	}
	if err := r.runSteps(ctx, &res, checks); err != nil {
		return res, err
	}
	if res.From == r.Image && !r.Force {
		fmt.Fprintf(r.Out, "the box already runs %s (set ZOPS_FORCE=1 to replace it anyway)\n", r.Image)
		return res, nil
	}

	changes := []step{
		{"publish " + r.Image + " in " + r.Param, func(ctx context.Context) error { return r.publish(ctx, r.Image) }},
		{"stop traffic to " + or(res.OldInstance, "the box") + " (Cloud Map, services)", func(ctx context.Context) error {
			return r.stopTraffic(ctx, res.OldInstance)
		}},
		{"replace the box (instance refresh, min healthy 0)", func(ctx context.Context) error { return r.refresh(ctx) }},
		{"wait for the new box's status checks and image", func(ctx context.Context) error {
			id, err := r.waitInstance(ctx, res.OldInstance, r.Image)
			res.NewInstance = id
			return err
		}},
		{"wait for /health through the edge", func(ctx context.Context) error { return r.waitHealth(ctx, res.RecipeHash) }},
		{"check the data volume moved to the new box", func(ctx context.Context) error {
			return r.volumeOn(ctx, res.NewInstance)
		}},
	}
	err := r.runSteps(ctx, &res, changes)
	if err == nil {
		res.VolumeAttachedTo = res.NewInstance
		fmt.Fprintf(r.Out, "rolled %s from %s to %s (box %s -> %s) in %.0fs\n", r.Group, or(res.From, "-"), r.Image, or(res.OldInstance, "-"), res.NewInstance, time.Since(start).Seconds())
		return res, nil
	}
	back := res.From // the image the box actually ran
	if back == "" {
		back = previous
	}
	if back == "" || back == r.Image {
		return res, fmt.Errorf("%w (no previous image to roll back to)", err)
	}
	fmt.Fprintf(r.Out, "rolling back to %s\n", back)
	res.RolledBack = true
	var rbInstance string
	rollback := []step{
		{"publish " + back + " in " + r.Param + " again", func(ctx context.Context) error { return r.publish(ctx, back) }},
		{"replace the failed box (instance refresh)", func(ctx context.Context) error { return r.refresh(ctx) }},
		{"wait for the rolled-back box's status checks and image", func(ctx context.Context) error {
			id, err := r.waitInstance(ctx, res.NewInstance, back)
			rbInstance = id
			return err
		}},
		{"wait for /health through the edge", func(ctx context.Context) error { return r.waitHealth(ctx, "") }},
		{"check the data volume is on the rolled-back box", func(ctx context.Context) error { return r.volumeOn(ctx, rbInstance) }},
	}
	// The rollback runs even when the rollout's context was cancelled (Ctrl-C half-way).
	if rerr := r.runSteps(context.WithoutCancel(ctx), &res, rollback); rerr != nil {
		return res, fmt.Errorf("%w: %w; rollback: %w", ErrRollbackFailed, err, rerr)
	}
	res.VolumeAttachedTo = rbInstance
	return res, fmt.Errorf("%w (%s, box %s, same data volume %s): %w", ErrRolledBack, back, rbInstance, r.VolumeID, err)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (r *Rollout) group(ctx context.Context) (*astypes.AutoScalingGroup, error) {
	out, err := r.ASG.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{r.Group}})
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", r.Group, err)
	}
	if len(out.AutoScalingGroups) != 1 {
		return nil, fmt.Errorf("%w: group %s not found (deploy the stacks: go tool mage infra:deploy)", ErrGroup, r.Group)
	}
	g := out.AutoScalingGroups[0]
	if aws.ToInt32(g.MaxSize) != 1 {
		return nil, fmt.Errorf("%w: %s has max size %d; the box's group must hold at most one instance (two would fight over the volume)", ErrGroup, r.Group, aws.ToInt32(g.MaxSize))
	}
	return &g, nil
}

func (r *Rollout) param(ctx context.Context) (string, error) {
	out, err := r.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(r.Param)})
	if err != nil {
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return "", nil
		}
		return "", fmt.Errorf("read image parameter %s: %w", r.Param, err)
	}
	return aws.ToString(out.Parameter.Value), nil
}

func (r *Rollout) instanceImage(ctx context.Context, id string) (string, error) {
	out, err := r.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return "", fmt.Errorf("describe instance %s: %w", id, err)
	}
	for _, rv := range out.Reservations {
		for _, in := range rv.Instances {
			return aws.ToString(in.ImageId), nil
		}
	}
	return "", fmt.Errorf("instance %s not found", id)
}

// checkImage refuses a missing, unavailable or non-arm64 image; it returns the recipe hash.
func (r *Rollout) checkImage(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("%w: no image given and %s is empty (build one: go tool mage ami)", ErrNoImage, r.Param)
	}
	out, err := r.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil || len(out.Images) != 1 {
		return "", fmt.Errorf("%w: %s (%v); list the images with go tool mage ami:list", ErrNoImage, id, err)
	}
	im := out.Images[0]
	if im.State != ec2types.ImageStateAvailable {
		return "", fmt.Errorf("%w: %s is %s", ErrNoImage, id, im.State)
	}
	if string(im.Architecture) != Arch {
		return "", fmt.Errorf("%w: %s is %s, the box is %s (Graviton); nothing was changed", ErrWrongArch, id, im.Architecture, Arch)
	}
	for _, t := range im.Tags {
		if aws.ToString(t.Key) == TagRecipeHash {
			fmt.Fprintf(r.Out, "    %s (%s), recipe hash %s\n", id, aws.ToString(im.Name), aws.ToString(t.Value))
			return aws.ToString(t.Value), nil
		}
	}
	fmt.Fprintf(r.Out, "    %s (%s), no recipe hash tag\n", id, aws.ToString(im.Name))
	return "", nil
}

// checkVolume waits while an instance outside the group holds the volume, then fails;
// nothing has changed yet.
func (r *Rollout) checkVolume(ctx context.Context, g *astypes.AutoScalingGroup, box string) error {
	zones := map[string]bool{}
	for _, z := range g.AvailabilityZones {
		zones[z] = true
	}
	deadline := r.now().Add(r.VolumeWait)
	for {
		v, err := r.volume(ctx)
		if err != nil {
			return err
		}
		if z := aws.ToString(v.AvailabilityZone); len(zones) > 0 && (!zones[z] || len(zones) > 1) {
			return fmt.Errorf("%w: volume %s is in %s, the group launches in %v; the stack must pin the group to the volume's subnet", ErrWrongZone, r.VolumeID, z, g.AvailabilityZones)
		}
		stray := ""
		for _, a := range v.Attachments {
			if id := aws.ToString(a.InstanceId); id != box {
				stray = id
			}
		}
		if stray == "" {
			return nil
		}
		if r.now().After(deadline) {
			return fmt.Errorf("%w: %s still holds %s after %s; nothing was changed. Find out why (aws ec2 describe-volumes --volume-ids %s), detach it once that instance is stopped, and run ami:rollout again", ErrVolumeHeld, stray, r.VolumeID, r.VolumeWait, r.VolumeID)
		}
		fmt.Fprintf(r.Out, "    volume %s is attached to %s, not the box %s: waiting\n", r.VolumeID, stray, or(box, "(none)"))
		if err := r.sleep(ctx); err != nil {
			return err
		}
	}
}

func (r *Rollout) volume(ctx context.Context) (ec2types.Volume, error) {
	out, err := r.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{r.VolumeID}})
	if err != nil || len(out.Volumes) != 1 {
		return ec2types.Volume{}, fmt.Errorf("describe data volume %s: %v", r.VolumeID, err)
	}
	return out.Volumes[0], nil
}

// publish writes the image into the parameter and reads it back until it shows: a parameter
// of DataType aws:ec2:image is validated asynchronously, a 200 does not mean it was written.
func (r *Rollout) publish(ctx context.Context, image string) error {
	_, err := r.SSM.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(r.Param), Value: aws.String(image), Type: ssmtypes.ParameterTypeString,
		DataType: aws.String("aws:ec2:image"), Overwrite: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", r.Param, err)
	}
	deadline := r.now().Add(r.ParamWait)
	for {
		v, err := r.param(ctx)
		if err != nil {
			return err
		}
		if v == image {
			return nil
		}
		if r.now().After(deadline) {
			return fmt.Errorf("%w: %s still reads %q after %s", ErrParameterInvalid, r.Param, v, r.ParamWait)
		}
		if err := r.sleep(ctx); err != nil {
			return err
		}
	}
}

// stopTraffic takes the box out of Cloud Map (API Gateway then answers 503 at once instead
// of waiting on a dying box) and stops its services, so PostgreSQL shuts down cleanly before
// the instance is terminated.
func (r *Rollout) stopTraffic(ctx context.Context, box string) error {
	if r.CloudMap != nil && r.ServiceID != "" {
		_, err := r.CloudMap.DeregisterInstance(ctx, &servicediscovery.DeregisterInstanceInput{ServiceId: aws.String(r.ServiceID), InstanceId: aws.String(r.CloudMapEntry)})
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("deregister the box from Cloud Map %s: %w", r.ServiceID, err)
		}
	}
	if box == "" || r.Stopper == nil {
		return nil
	}
	if err := r.Stopper.Stop(ctx, box); err != nil {
		// A box that cannot be reached is being replaced anyway; the termination is then an
		// OS shutdown, which stops PostgreSQL with systemd's stop job.
		fmt.Fprintf(r.Out, "    could not stop the services on %s (%v); the termination's shutdown stops them\n", box, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf interface{ ErrorCode() string }
	return errors.As(err, &nf) && (nf.ErrorCode() == "InstanceNotFound" || nf.ErrorCode() == "ServiceNotFound")
}

// refresh starts an instance refresh that terminates before it launches and waits for it.
func (r *Rollout) refresh(ctx context.Context) error {
	out, err := r.ASG.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{
		AutoScalingGroupName: aws.String(r.Group),
		Strategy:             astypes.RefreshStrategyRolling,
		Preferences: &astypes.RefreshPreferences{
			MinHealthyPercentage: aws.Int32(0),
			MaxHealthyPercentage: aws.Int32(100), // never a second instance next to the old one
			InstanceWarmup:       aws.Int32(int32(r.InstanceWarm / time.Second)),
			SkipMatching:         aws.Bool(false),
		},
	})
	if err != nil {
		return fmt.Errorf("start instance refresh of %s: %w", r.Group, err)
	}
	id := aws.ToString(out.InstanceRefreshId)
	deadline := r.now().Add(r.RefreshWait)
	last := ""
	for {
		d, err := r.ASG.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(r.Group), InstanceRefreshIds: []string{id}})
		if err != nil {
			return fmt.Errorf("describe instance refresh %s: %w", id, err)
		}
		if len(d.InstanceRefreshes) == 1 {
			ir := d.InstanceRefreshes[0]
			st := string(ir.Status)
			if st != last {
				fmt.Fprintf(r.Out, "    refresh %s: %s %s\n", id, st, aws.ToString(ir.StatusReason))
				last = st
			}
			switch ir.Status {
			case astypes.InstanceRefreshStatusSuccessful:
				return nil
			case astypes.InstanceRefreshStatusFailed, astypes.InstanceRefreshStatusCancelled, astypes.InstanceRefreshStatusRollbackSuccessful, astypes.InstanceRefreshStatusRollbackFailed:
				return fmt.Errorf("%w: %s %s: %s", ErrRefresh, id, st, aws.ToString(ir.StatusReason))
			}
		}
		if r.now().After(deadline) {
			return fmt.Errorf("%w: %s not done after %s (status %s)", ErrRefresh, id, r.RefreshWait, last)
		}
		if err := r.sleep(ctx); err != nil {
			return err
		}
	}
}

// waitInstance waits for the group's one instance that is not old, on image, with both
// status checks ok.
func (r *Rollout) waitInstance(ctx context.Context, old, image string) (string, error) {
	deadline := r.now().Add(r.HealthWait)
	var last string
	for {
		g, err := r.group(ctx)
		if err != nil {
			return "", err
		}
		for _, in := range g.Instances {
			id := aws.ToString(in.InstanceId)
			if id == old || in.LifecycleState != astypes.LifecycleStateInService {
				continue
			}
			img, err := r.instanceImage(ctx, id)
			if err != nil {
				return "", err
			}
			if img != image {
				return id, fmt.Errorf("%w: %s runs %s, want %s", ErrUnhealthy, id, img, image)
			}
			st, err := r.EC2.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}})
			if err != nil {
				return id, fmt.Errorf("describe status of %s: %w", id, err)
			}
			for _, s := range st.InstanceStatuses {
				is, ss := s.InstanceStatus.Status, s.SystemStatus.Status
				last = fmt.Sprintf("%s instance %s system %s", id, is, ss)
				if is == ec2types.SummaryStatusOk && ss == ec2types.SummaryStatusOk {
					fmt.Fprintf(r.Out, "    %s on %s: status checks ok\n", id, img)
					return id, nil
				}
			}
		}
		if r.now().After(deadline) {
			return "", fmt.Errorf("%w: no instance with passing status checks after %s (%s)", ErrUnhealthy, r.HealthWait, or(last, "none in service"))
		}
		if err := r.sleep(ctx); err != nil {
			return "", err
		}
	}
}

// waitHealth waits for 200 from /health through the edge, with the recipe hash when the box
// reports one.
func (r *Rollout) waitHealth(ctx context.Context, recipe string) error {
	deadline := r.now().Add(r.HealthWait)
	var last string
	for {
		h, err := r.Health(ctx)
		switch {
		case err != nil:
			last = err.Error()
		case h.Status != 200:
			last = fmt.Sprintf("status %d", h.Status)
		case recipe != "" && h.RecipeHash != "" && h.RecipeHash != recipe:
			last = fmt.Sprintf("recipe hash %s, want %s", h.RecipeHash, recipe)
		default:
			what := "version " + h.Version
			if h.RecipeHash != "" {
				what += ", recipe hash " + h.RecipeHash
			}
			fmt.Fprintf(r.Out, "    /health: 200, %s\n", what)
			return nil
		}
		if r.now().After(deadline) {
			return fmt.Errorf("%w: /health through the edge: %s after %s", ErrUnhealthy, last, r.HealthWait)
		}
		if err := r.sleep(ctx); err != nil {
			return err
		}
	}
}

// volumeOn checks the data volume is attached to the box and nothing else.
func (r *Rollout) volumeOn(ctx context.Context, box string) error {
	v, err := r.volume(ctx)
	if err != nil {
		return err
	}
	if len(v.Attachments) != 1 || aws.ToString(v.Attachments[0].InstanceId) != box {
		return fmt.Errorf("data volume %s attachments %v, want only %s", r.VolumeID, attachments(v), box)
	}
	return nil
}

func attachments(v ec2types.Volume) []string {
	var out []string
	for _, a := range v.Attachments {
		out = append(out, aws.ToString(a.InstanceId)+":"+string(a.State))
	}
	return out
}
