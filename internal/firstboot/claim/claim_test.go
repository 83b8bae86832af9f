package claim

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
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
)

// fakeEC2 keeps EBS's rules: a volume attaches only to one instance at a time and only in its
// own zone. No local emulator implements attachments (kumo has no EBS), so this fake does;
// the real calls are exercised by the AWS acceptance test of ami:rollout
// (ZOPS_AWS_ACCEPTANCE=1).
type fakeEC2 struct {
	mu        sync.Mutex
	zone      string
	zones     map[string]string // instance -> zone
	holder    string
	releaseIn int // polls until the holder lets go (-1: never)
	attaches  int
	eip       string // instance holding the address
}

func (f *fakeEC2) DescribeVolume(_ context.Context, id string) (Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holder != "" && f.holder != "i-new" && f.releaseIn >= 0 {
		if f.releaseIn == 0 {
			f.holder = ""
		}
		f.releaseIn--
	}
	v := Volume{ID: id, Zone: f.zone, State: "available", Attachments: map[string]string{}}
	if f.holder != "" {
		v.State = "in-use"
		v.Attachments[f.holder] = "attached"
	}
	return v, nil
}

func (f *fakeEC2) AttachVolume(_ context.Context, volume, id, device string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.zones[id] != f.zone {
		return &APIError{Status: 400, Code: "InvalidVolume.ZoneMismatch", Message: fmt.Sprintf("volume in %s, instance in %s", f.zone, f.zones[id])}
	}
	if f.holder != "" {
		return &APIError{Status: 400, Code: "VolumeInUse", Message: fmt.Sprintf("%s is already attached to %s", volume, f.holder)}
	}
	f.holder = id
	f.attaches++
	return nil
}

func (f *fakeEC2) AssociateAddress(_ context.Context, allocation, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eip = id
	return nil
}

type fakeCloudMap struct{ instances map[string]map[string]string }

func (f *fakeCloudMap) RegisterInstance(_ context.Context, in *servicediscovery.RegisterInstanceInput, _ ...func(*servicediscovery.Options)) (*servicediscovery.RegisterInstanceOutput, error) {
	if f.instances == nil {
		f.instances = map[string]map[string]string{}
	}
	f.instances[aws.ToString(in.InstanceId)] = in.Attributes
	return &servicediscovery.RegisterInstanceOutput{}, nil
}

func newBox(f *fakeEC2, cm *fakeCloudMap, out *bytes.Buffer) *Box {
	b := &Box{
		InstanceID: "i-new", PrivateIP: "10.0.0.9", Zone: "eu-west-1a",
		P:   Params{VolumeID: "vol-1", AllocationID: "eipalloc-1", ServiceID: "srv-1", Zone: "eu-west-1a", Port: 8080, Device: "/dev/sdf"},
		EC2: f, CloudMap: cm, Poll: time.Millisecond, Wait: 200 * time.Millisecond,
	}
	if out != nil {
		b.Out = out
	}
	return b
}

func TestClaim(t *testing.T) {
	tests := []struct {
		name      string
		f         *fakeEC2
		box       func(*Box)
		wantErr   error
		wantHold  string
		wantAttch int
		wantLog   string
	}{
		{"free volume", &fakeEC2{}, nil, nil, "i-new", 1, "attaching data volume vol-1"},
		{"reboot: already attached here", &fakeEC2{holder: "i-new"}, nil, nil, "i-new", 0, "attached here"},
		// The old box is shutting down: wait, never detach it by force, then attach.
		{"old box still holds it, then lets go", &fakeEC2{holder: "i-old", releaseIn: 3}, nil, nil, "i-new", 1, "held by i-old"},
		{"old box never lets go", &fakeEC2{holder: "i-old", releaseIn: -1}, nil, ErrVolumeHeld, "i-old", 0, "held by i-old"},
		{"instance in another zone", &fakeEC2{}, func(b *Box) { b.Zone = "eu-west-1b" }, ErrWrongZone, "", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.zone = "eu-west-1a"
			tc.f.zones = map[string]string{"i-new": "eu-west-1a", "i-old": "eu-west-1a"}
			var out bytes.Buffer
			b := newBox(tc.f, &fakeCloudMap{}, &out)
			if tc.box != nil {
				tc.box(b)
				tc.f.zones["i-new"] = b.Zone
			}
			err := b.Claim(context.Background())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Claim = %v, want %v\n%s", err, tc.wantErr, out.String())
			}
			if tc.f.holder != tc.wantHold || tc.f.attaches != tc.wantAttch || !strings.Contains(out.String(), tc.wantLog) {
				t.Fatalf("holder %q attaches %d, want %q %d; log:\n%s", tc.f.holder, tc.f.attaches, tc.wantHold, tc.wantAttch, out.String())
			}
			if tc.wantErr == nil && tc.f.eip != "i-new" {
				t.Fatalf("Elastic IP on %q, want i-new", tc.f.eip)
			}
			if tc.wantErr != nil && tc.f.eip != "" {
				t.Fatalf("Elastic IP moved (%q) although the volume was not claimed", tc.f.eip)
			}
			if errors.Is(err, ErrVolumeHeld) && !strings.Contains(err.Error(), "i-old") {
				t.Fatalf("error does not name the holder: %v", err)
			}
		})
	}
}

// Two boxes racing for the volume: exactly one gets it.
func TestClaimRaceOneWinner(t *testing.T) {
	f := &fakeEC2{releaseIn: -1, zone: "eu-west-1a", zones: map[string]string{"i-new": "eu-west-1a", "i-two": "eu-west-1a"}}
	a := newBox(f, &fakeCloudMap{}, nil)
	b := newBox(f, &fakeCloudMap{}, nil)
	b.InstanceID = "i-two"
	errs := make(chan error, 2)
	go func() { errs <- a.attach(context.Background()) }()
	go func() { errs <- b.attach(context.Background()) }()
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) || f.attaches != 1 {
		t.Fatalf("race: %v / %v, attaches %d; want one winner", e1, e2, f.attaches)
	}
}

func TestAnnounceReplacesTheOldAddress(t *testing.T) {
	cm := &fakeCloudMap{instances: map[string]map[string]string{CloudMapInstanceID: {"AWS_INSTANCE_IPV4": "10.0.0.5"}}}
	b := newBox(&fakeEC2{}, cm, nil)
	if err := b.Announce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(cm.instances) != 1 || cm.instances[CloudMapInstanceID]["AWS_INSTANCE_IPV4"] != "10.0.0.9" || cm.instances[CloudMapInstanceID]["AWS_INSTANCE_PORT"] != "8080" {
		t.Fatalf("cloud map = %v", cm.instances)
	}
}

func TestParseParams(t *testing.T) {
	p, err := ParseParams(`{"volume_id":"vol-1","allocation_id":"eipalloc-1","service_id":"srv-1","availability_zone":"eu-west-1a","port":8080}`)
	if err != nil || p.Device != "/dev/sdf" {
		t.Fatalf("%+v %v", p, err)
	}
	_, err = ParseParams(`{"volume_id":"vol-1"}`)
	if !errors.Is(err, ErrParams) || !strings.Contains(err.Error(), "allocation_id, availability_zone, port, service_id") {
		t.Fatalf("missing fields: %v", err)
	}
}
