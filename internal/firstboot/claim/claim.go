// Package claim makes the instance it runs on the live box, at first boot: it attaches the
// data volume (waiting while another instance still holds it), associates the Elastic IP and,
// once the services run, registers the instance in the Cloud Map service the API Gateway VPC
// link resolves.
//
// Why the box does this itself (infra/README.md, "Who replaces the box"): the box runs in an
// Auto Scaling group of exactly one, so a lost instance is replaced without anyone and an AMI
// rollout is an instance refresh that terminates the old instance before it launches the new
// one. CloudFormation therefore owns no instance, volume attachment, address association or
// Cloud Map instance that a replacement would leave pointing at the old box; the new box claims
// them, with a role that may attach only the data volume to instances of the group.
//
// zops-box must not link the EC2 SDK (large: minutes to compile on a fresh machine, megabytes
// in the box binary; cmd/zops-box/deps_test.go), so the three EC2 calls go through a small
// Query-API client of this package (ec2query.go), signed with the SDK's SigV4 signer that
// zops-box links anyway. Cloud Map's SDK is small and used as it is.
package claim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
)

// Volume is what first boot needs to know about the data volume.
type Volume struct {
	ID, Zone string
	State    string // creating, available, in-use, deleting, deleted, error
	// Attachments: instance id -> attachment state (attaching, attached, detaching, detached).
	Attachments map[string]string
}

// EC2API is the part of EC2 first boot uses. No local emulator implements these calls with
// EC2's attachment semantics (kumo has no EBS attachments), so tests use a fake that does,
// and the Query client is tested against recorded EC2 responses.
type EC2API interface {
	// DescribeVolume returns the volume with its zone, state and attachments.
	DescribeVolume(ctx context.Context, id string) (Volume, error)
	// AttachVolume attaches an available volume; it fails (IncorrectState, VolumeInUse) while
	// another instance holds it, and for an instance in another zone.
	AttachVolume(ctx context.Context, volume, instance, device string) error
	// AssociateAddress moves the Elastic IP to the instance, taking it from the old one if it
	// still has it (AllowReassociation).
	AssociateAddress(ctx context.Context, allocation, instance string) error
}

// CloudMapAPI registers the box in its Cloud Map service. The twin has no Cloud Map either
// (its gateway reaches the box directly), hence the fake in tests.
type CloudMapAPI interface {
	// RegisterInstance creates or replaces the instance with the given id in the service.
	RegisterInstance(ctx context.Context, in *servicediscovery.RegisterInstanceInput, optFns ...func(*servicediscovery.Options)) (*servicediscovery.RegisterInstanceOutput, error)
}

var (
	_ EC2API      = (*QueryEC2)(nil)
	_ CloudMapAPI = (*servicediscovery.Client)(nil)
)

// Errors of the claim.
var (
	ErrWrongZone   = errors.New("the data volume is in another availability zone")
	ErrVolumeHeld  = errors.New("the data volume is still attached to another instance")
	ErrVolumeState = errors.New("the data volume cannot be attached")
	ErrParams      = errors.New("box parameter incomplete")
)

// Param is the SSM parameter (under the box's prefix) holding Params as JSON; the compute
// stack writes it (infra/box_group.go ParamBox).
const Param = "box"

// CloudMapInstanceID is the one instance id the box registers under: a new box's
// registration replaces the old box's in place, so the service never lists two addresses.
const CloudMapInstanceID = "box"

// Params are the stack's ids the box claims, published by the compute stack as the JSON SSM
// parameter <prefix>/box (infra/compute.go).
type Params struct {
	VolumeID     string `json:"volume_id"`
	AllocationID string `json:"allocation_id"`
	ServiceID    string `json:"service_id"`
	Zone         string `json:"availability_zone"`
	Port         int    `json:"port"`
	Device       string `json:"device"` // requested device name (Nitro ignores it; first boot finds the volume by id)
}

// ParseParams reads the box parameter and lists every missing field.
func ParseParams(raw string) (Params, error) {
	var p Params
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return p, fmt.Errorf("%w: not JSON: %w", ErrParams, err)
	}
	var missing []string
	for name, v := range map[string]string{"volume_id": p.VolumeID, "allocation_id": p.AllocationID, "service_id": p.ServiceID, "availability_zone": p.Zone} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if p.Port <= 0 {
		missing = append(missing, "port")
	}
	if len(missing) > 0 {
		return p, fmt.Errorf("%w: lacks %s (infra:deploy writes it)", ErrParams, strings.Join(sorted(missing), ", "))
	}
	if p.Device == "" {
		p.Device = "/dev/sdf"
	}
	return p, nil
}

func sorted(s []string) []string { sort.Strings(s); return s }

// Box is this instance and what it claims.
type Box struct {
	InstanceID, PrivateIP, Zone string // from the instance metadata
	P                           Params
	EC2                         EC2API
	CloudMap                    CloudMapAPI
	// Wait is how long to wait while another instance holds the volume (default 10 minutes:
	// an instance refresh terminates the old box first, which detaches it within a minute or
	// two; a box that is lost but not yet terminated is terminated by the group's health check).
	Wait time.Duration
	Poll time.Duration // default 5s
	Out  io.Writer
	Now  func() time.Time
}

func (b *Box) logf(format string, args ...any) {
	if b.Out != nil {
		fmt.Fprintf(b.Out, "claim: "+format+"\n", args...)
	}
}

func (b *Box) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Box) sleep(ctx context.Context) error {
	p := b.Poll
	if p <= 0 {
		p = 5 * time.Second
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(p):
		return nil
	}
}

// Claim attaches the data volume to this instance and associates the Elastic IP. Run it
// before waiting for the volume's device; it is idempotent (a reboot finds both in place).
func (b *Box) Claim(ctx context.Context) error {
	if err := b.attach(ctx); err != nil {
		return err
	}
	if err := b.EC2.AssociateAddress(ctx, b.P.AllocationID, b.InstanceID); err != nil {
		return fmt.Errorf("associate Elastic IP %s with %s: %w", b.P.AllocationID, b.InstanceID, err)
	}
	b.logf("Elastic IP %s now on %s", b.P.AllocationID, b.InstanceID)
	return nil
}

// attach waits until the volume is free, then attaches it here. It never detaches the volume
// from another instance: that one may still be writing to it (the old box shutting down).
func (b *Box) attach(ctx context.Context) error {
	if b.P.Zone != "" && b.Zone != "" && b.P.Zone != b.Zone {
		return fmt.Errorf("%w: volume %s is in %s, this instance %s in %s; the group must launch only in the volume's zone (infra/compute.go)", ErrWrongZone, b.P.VolumeID, b.P.Zone, b.InstanceID, b.Zone)
	}
	wait := b.Wait
	if wait <= 0 {
		wait = 10 * time.Minute
	}
	deadline := b.now().Add(wait)
	requested := false
	for {
		v, err := b.EC2.DescribeVolume(ctx, b.P.VolumeID)
		if err != nil {
			return fmt.Errorf("describe data volume %s: %w", b.P.VolumeID, err)
		}
		if b.Zone != "" && v.Zone != b.Zone {
			return fmt.Errorf("%w: volume %s is in %s, this instance %s in %s; the group must launch only in the volume's zone", ErrWrongZone, b.P.VolumeID, v.Zone, b.InstanceID, b.Zone)
		}
		var holder, holderState string
		for id, st := range v.Attachments {
			if st == "detached" {
				continue
			}
			holder, holderState = id, st
		}
		switch {
		case holder == b.InstanceID && holderState == "attached":
			b.logf("data volume %s attached here", b.P.VolumeID)
			return nil
		case holder == b.InstanceID:
			// attaching: wait for it
		case v.State == "available" && !requested:
			b.logf("attaching data volume %s to %s as %s", b.P.VolumeID, b.InstanceID, b.P.Device)
			err := b.EC2.AttachVolume(ctx, b.P.VolumeID, b.InstanceID, b.P.Device)
			if err != nil && !retryableAttach(err) {
				return fmt.Errorf("attach data volume %s: %w", b.P.VolumeID, err)
			}
			requested = err == nil
		case v.State == "available":
			requested = false // the request was dropped: ask again
		case v.State == "in-use" && holder != "":
			b.logf("data volume %s is held by %s (%s); waiting for it to be released", b.P.VolumeID, holder, holderState)
		case v.State == "creating":
		default:
			return fmt.Errorf("%w: volume %s is %s", ErrVolumeState, b.P.VolumeID, v.State)
		}
		if b.now().After(deadline) {
			if holder != "" && holder != b.InstanceID {
				return fmt.Errorf("%w: %s still holds %s after %s; terminate it (or detach the volume once it is stopped) and restart zops-firstboot.service", ErrVolumeHeld, holder, b.P.VolumeID, wait)
			}
			return fmt.Errorf("%w: volume %s not attached after %s (state %s)", ErrVolumeState, b.P.VolumeID, wait, v.State)
		}
		if err := b.sleep(ctx); err != nil {
			return err
		}
	}
}

// retryableAttach: another instance got there first, or the volume is between states.
func retryableAttach(err error) bool {
	s := err.Error()
	return strings.Contains(s, "VolumeInUse") || strings.Contains(s, "IncorrectState")
}

// Announce registers this instance in the box's Cloud Map service under CloudMapInstanceID,
// replacing the old box's address. Run it once the API serves.
func (b *Box) Announce(ctx context.Context) error {
	_, err := b.CloudMap.RegisterInstance(ctx, &servicediscovery.RegisterInstanceInput{
		ServiceId:  aws.String(b.P.ServiceID),
		InstanceId: aws.String(CloudMapInstanceID),
		Attributes: map[string]string{
			"AWS_INSTANCE_IPV4": b.PrivateIP,
			"AWS_INSTANCE_PORT": strconv.Itoa(b.P.Port),
			"EC2_INSTANCE_ID":   b.InstanceID,
		},
	})
	if err != nil {
		return fmt.Errorf("register %s (%s:%d) in Cloud Map service %s: %w", b.InstanceID, b.PrivateIP, b.P.Port, b.P.ServiceID, err)
	}
	b.logf("registered %s:%d in Cloud Map service %s as %q", b.PrivateIP, b.P.Port, b.P.ServiceID, CloudMapInstanceID)
	return nil
}
