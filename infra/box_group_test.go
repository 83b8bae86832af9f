package main

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// boxParam is the box parameter's value as rendered (JSON joined with the resolved ids).
func boxParam(t *testing.T) string {
	t.Helper()
	for _, p := range res(PartCompute, "AWS::SSM::Parameter") {
		if props(p)["Name"] == cfg.SSM(ParamBox) {
			return js(props(p)["Value"])
		}
	}
	t.Fatalf("no parameter %s", cfg.SSM(ParamBox))
	return ""
}

// Trap 4 and "who replaces the box": only the Auto Scaling group can make a box, and it can
// make only one: no instance, attachment, address association or Cloud Map instance in the
// stack that CloudFormation could create next to the old box's.
func TestBoxOnlyFromAGroupOfOne(t *testing.T) {
	for _, typ := range []string{"AWS::EC2::Instance", "AWS::EC2::VolumeAttachment", "AWS::EC2::EIPAssociation", "AWS::ServiceDiscovery::Instance"} {
		for part := range raw {
			count(t, part, typ, 0)
		}
	}
	_, g := one(t, PartCompute, "AWS::AutoScaling::AutoScalingGroup")
	p := props(g)
	if p["AutoScalingGroupName"] != "zmanim-prod-box" || GroupName("prod") != "zmanim-prod-box" {
		t.Errorf("group name %v: must be fixed (ami:rollout finds it; CloudFormation cannot create a second group of that name)", p["AutoScalingGroupName"])
	}
	if p["MinSize"] != "1" || p["MaxSize"] != "1" {
		t.Errorf("group size %v..%v, want exactly one", p["MinSize"], p["MaxSize"])
	}
}

// The volume can never be attached to two instances: every replacement terminates first.
func TestBoxReplacementTerminatesBeforeItLaunches(t *testing.T) {
	_, g := one(t, PartCompute, "AWS::AutoScaling::AutoScalingGroup")
	p := props(g)
	// Health replacements and instance refreshes: instance maintenance policy.
	if js(p["InstanceMaintenancePolicy"]) != `{"MaxHealthyPercentage":100,"MinHealthyPercentage":0}` {
		t.Errorf("instance maintenance policy %s, want min healthy 0 / max healthy 100", js(p["InstanceMaintenancePolicy"]))
	}
	// CloudFormation changes of the launch template: rolling update, none kept in service.
	ru, _ := g["UpdatePolicy"].(map[string]any)["AutoScalingRollingUpdate"].(map[string]any)
	if js(ru["MinInstancesInService"]) != "0" || js(ru["MaxBatchSize"]) != "1" {
		t.Errorf("update policy %s, want AutoScalingRollingUpdate MaxBatchSize 1, MinInstancesInService 0", js(g["UpdatePolicy"]))
	}
	if p["HealthCheckType"] != "EC2" {
		t.Errorf("health check %v, want EC2 (a lost box is replaced)", p["HealthCheckType"])
	}
}

// The group launches only in the data volume's subnet (its zone).
func TestBoxCannotLandInAnotherZone(t *testing.T) {
	_, v := one(t, PartCompute, "AWS::EC2::Volume")
	zone := props(v)["AvailabilityZone"]
	_, g := one(t, PartCompute, "AWS::AutoScaling::AutoScalingGroup")
	subnets := asList(props(g)["VPCZoneIdentifier"])
	if len(subnets) != 1 {
		t.Fatalf("group subnets %s, want only the volume's", js(subnets))
	}
	// The subnet is the network stack's; find its zone there.
	found := false
	for id, s := range res(PartNetwork, "AWS::EC2::Subnet") {
		if strings.Contains(js(subnets[0]), id) {
			found = true
			if props(s)["AvailabilityZone"] != zone {
				t.Errorf("group subnet %s in %v, volume in %v", id, props(s)["AvailabilityZone"], zone)
			}
		}
	}
	if !found {
		t.Errorf("group subnet %s is not a subnet of the network stack", js(subnets[0]))
	}
	if !strings.Contains(boxParam(t), `availability_zone\":\"`+zone.(string)) {
		t.Errorf("box parameter %s, volume zone %v", boxParam(t), zone)
	}
}

// Termination is safe: what lasts is not the instance's. The data volume is retained and
// never in the launch template (so never deleted with an instance), the Elastic IP is
// retained, a forced delete of the group is refused, and EC2 termination protection is not
// used (Auto Scaling ignores it, and CloudFormation would leave a protected box running next
// to its replacement: cloudformation-coverage-roadmap 2226).
func TestBoxTerminationIsSafe(t *testing.T) {
	_, lt := one(t, PartCompute, "AWS::EC2::LaunchTemplate")
	d := props(lt)["LaunchTemplateData"].(map[string]any)
	if n := len(asList(d["BlockDeviceMappings"])); n != 1 {
		t.Errorf("launch template has %d block devices, want the root volume only", n)
	}
	if _, ok := d["DisableApiTermination"]; ok {
		t.Errorf("launch template sets DisableApiTermination")
	}
	_, v := one(t, PartCompute, "AWS::EC2::Volume")
	_, eip := one(t, PartCompute, "AWS::EC2::EIP")
	if v["DeletionPolicy"] != "Retain" || eip["DeletionPolicy"] != "Retain" {
		t.Errorf("volume %v / Elastic IP %v deletion policies, want Retain", v["DeletionPolicy"], eip["DeletionPolicy"])
	}
	_, g := one(t, PartCompute, "AWS::AutoScaling::AutoScalingGroup")
	if props(g)["DeletionProtection"] != "prevent-force-deletion" && props(g)["DeletionProtection"] != "PREVENT_FORCE_DELETION" {
		t.Errorf("group deletion protection %v", props(g)["DeletionProtection"])
	}
}

// Cloud Map and the Elastic IP follow the live box: the box parameter names them, and the
// box's role may claim them only for instances of the group and only the tagged data volume.
func TestBoxClaimsVolumeAddressAndCloudMapWithLeastPrivilege(t *testing.T) {
	bp := boxParam(t)
	for _, k := range []string{"volume_id", "allocation_id", "service_id", "availability_zone", "port", "device"} { // claim.Params
		if !strings.Contains(bp, `\"`+k+`\":`) {
			t.Errorf("box parameter lacks %s: %s", k, bp)
		}
	}
	_, pol := one(t, PartCompute, "AWS::IAM::Policy")
	bySid := map[string]map[string]any{}
	for _, s := range asList(props(pol)["PolicyDocument"].(map[string]any)["Statement"]) {
		m := s.(map[string]any)
		sid, _ := m["Sid"].(string)
		bySid[sid] = m
	}
	inst := bySid["ClaimAsGroupInstance"]
	if !strings.Contains(js(inst["Resource"]), ":instance/*") || js(inst["Condition"]) != `{"StringEquals":{"aws:ResourceTag/aws:autoscaling:groupName":"zmanim-prod-box"}}` {
		t.Errorf("instance side of the claim: %s", js(inst))
	}
	vol := bySid["ClaimDataVolume"]
	if !strings.Contains(js(vol["Resource"]), ":volume/") || !strings.Contains(js(vol["Condition"]), DataVolumeTag) || js(vol["Action"]) != `"ec2:AttachVolume"` {
		t.Errorf("volume side of the claim: %s", js(vol))
	}
	if a := js(bySid["ClaimElasticIp"]); !strings.Contains(a, ":elastic-ip/") || !strings.Contains(a, "AllocationId") {
		t.Errorf("address side of the claim: %s", a)
	}
	if a := js(bySid["ClaimCloudMap"]); !strings.Contains(a, "servicediscovery:RegisterInstance") || strings.Contains(a, `"*"`) {
		t.Errorf("Cloud Map side of the claim: %s", a)
	}
	for sid, s := range bySid {
		if strings.Contains(js(s["Action"]), "DetachVolume") || strings.Contains(js(s["Action"]), "ec2:TerminateInstances") {
			t.Errorf("%s lets the box detach volumes or terminate instances: %s", sid, js(s))
		}
	}
	has(t, PartCompute, "AWS::EC2::Volume", map[string]any{"Tags": assertions.Match_ArrayWith(&[]any{map[string]any{"Key": DataVolumeTag, "Value": "prod"}})})
}

// A lost data volume is replaced by raising instance.data_volume_generation
// (migration/recovery.md): a new logical id, so CloudFormation creates a new blank volume
// (retaining the old one), in the same zone, tagged, and the box parameter names it.
func TestLostVolumeReplacedByGeneration(t *testing.T) {
	e := *cfg
	e.Instance.DataVolumeGeneration = 2
	dir := t.TempDir()
	app, s, err := NewApp(&e, Options{OutDir: dir, GitHubRepo: "shtetl/zmanim-ops"})
	if err != nil {
		t.Fatal(err)
	}
	app.Synth(nil)
	tpl := assertions.Template_FromStack(s.Compute.Stack, nil)
	vols := tpl.FindResources(jsii.String("AWS::EC2::Volume"), nil)
	var id string
	for k := range *vols {
		id = k
	}
	if len(*vols) != 1 || !strings.HasPrefix(id, "DataVolume2") {
		t.Fatalf("volumes %v, want one DataVolume2*", *vols)
	}
	_, old := one(t, PartCompute, "AWS::EC2::Volume")
	v := *(*vols)[id]
	if v["DeletionPolicy"] != "Retain" || js(props(v)["AvailabilityZone"]) != js(props(old)["AvailabilityZone"]) || !strings.Contains(js(props(v)["Tags"]), DataVolumeTag) {
		t.Errorf("new volume %s", js(v))
	}
	params := tpl.FindResources(jsii.String("AWS::SSM::Parameter"), nil)
	found := false
	for _, p := range *params {
		pp := props(*p)
		found = found || (pp["Name"] == cfg.SSM(ParamBox) && strings.Contains(js(pp["Value"]), id))
	}
	if !found {
		t.Errorf("the box parameter does not name the new volume %s", id)
	}
}
