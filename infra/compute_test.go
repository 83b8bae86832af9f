package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/config"
)

func TestStory7_4_1_GravitonBoxFromPackerAmi_IMDSv2(t *testing.T) {
	id, box := one(t, PartCompute, "AWS::EC2::Instance")
	p := props(box)
	if p["InstanceType"] != cfg.Instance.Type || cfg.Instance.Type != "m7g.medium" {
		t.Errorf("instance type %v", p["InstanceType"])
	}
	// The AMI comes from the SSM parameter the Packer pipeline writes, resolved at deploy time.
	ref, _ := p["ImageId"].(map[string]any)["Ref"].(string)
	param, ok := raw[PartCompute]["Parameters"].(map[string]any)[ref].(map[string]any)
	if !ok || param["Type"] != "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>" || param["Default"] != cfg.Instance.AMIParameter {
		t.Errorf("%s ImageId %v -> parameter %v, want the SSM AMI parameter %s", id, p["ImageId"], param, cfg.Instance.AMIParameter)
	}
	has(t, PartCompute, "AWS::EC2::Instance", map[string]any{"MetadataOptions": map[string]any{"HttpTokens": "required", "HttpPutResponseHopLimit": 1}})
	if p["DisableApiTermination"] != true {
		t.Errorf("termination protection off")
	}
	named := false
	for _, tag := range p["Tags"].([]any) {
		m := tag.(map[string]any)
		named = named || (m["Key"] == "Name" && m["Value"] == "zmanim-prod-box")
	}
	if !named {
		t.Errorf("the box lacks the tag Name=zmanim-prod-box that the release's SSM deployer looks for: %v", p["Tags"])
	}
}

func TestStory7_4_2_RootVolume10GBGp3Encrypted(t *testing.T) {
	has(t, PartCompute, "AWS::EC2::Instance", map[string]any{
		"BlockDeviceMappings": []any{map[string]any{
			"DeviceName": RootDevice,
			"Ebs":        map[string]any{"VolumeSize": cfg.Instance.RootVolumeGB, "VolumeType": "gp3", "Encrypted": true, "DeleteOnTermination": true},
		}},
	})
	if cfg.Instance.RootVolumeGB != 10 {
		t.Errorf("root volume %d GB", cfg.Instance.RootVolumeGB)
	}
}

// 7.4.3 with trap 4: the data volume is its own resource, retained on replacement and deletion,
// attached as a separate resource, in the box's zone.
func TestStory7_4_3_DataVolume20GBRetained_Trap4(t *testing.T) {
	id, v := one(t, PartCompute, "AWS::EC2::Volume")
	p := props(v)
	if js(p["Size"]) != "20" || p["VolumeType"] != "gp3" || p["Encrypted"] != true {
		t.Errorf("data volume %v", p)
	}
	if v["DeletionPolicy"] != "Retain" || v["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("data volume policies %v/%v, want Retain", v["DeletionPolicy"], v["UpdateReplacePolicy"])
	}
	_, box := one(t, PartCompute, "AWS::EC2::Instance")
	if p["AvailabilityZone"] != props(box)["AvailabilityZone"] {
		t.Errorf("volume in %v, box in %v", p["AvailabilityZone"], props(box)["AvailabilityZone"])
	}
	has(t, PartCompute, "AWS::EC2::VolumeAttachment", map[string]any{"Device": DataDevice, "VolumeId": map[string]any{"Ref": id}})
}

func TestStory7_4_4_ElasticIPAttached(t *testing.T) {
	eip, _ := one(t, PartCompute, "AWS::EC2::EIP")
	boxID, _ := one(t, PartCompute, "AWS::EC2::Instance")
	has(t, PartCompute, "AWS::EC2::EIPAssociation", map[string]any{
		"AllocationId": map[string]any{"Fn::GetAtt": []any{eip, "AllocationId"}},
		"InstanceId":   map[string]any{"Ref": boxID},
	})
}

// 7.4.5 + 7.9.3: S3 (own buckets only), SSM (own prefix only), SES (own sender only).
func TestStory7_4_5_and_7_9_3_LeastPrivilegeRole(t *testing.T) {
	_, pol := one(t, PartCompute, "AWS::IAM::Policy")
	stmts := asList(props(pol)["PolicyDocument"].(map[string]any)["Statement"])
	bySid := map[string]map[string]any{}
	for _, s := range stmts {
		m := s.(map[string]any)
		sid, _ := m["Sid"].(string)
		bySid[sid] = m
		for _, a := range asStrings(m["Action"]) {
			if strings.HasSuffix(a, ":*") || a == "*" {
				t.Errorf("%s grants %s", sid, a)
			}
		}
	}
	tests := []struct {
		sid, action, resource string
	}{
		{"BackupsObjects", "s3:PutObject", "arn:aws:s3:::" + cfg.Buckets.Backups + "/*"},
		{"BackupsObjects", "s3:DeleteObject", "arn:aws:s3:::" + cfg.Buckets.Backups + "/*"},
		{"ReleasesRead", "s3:GetObject", "arn:aws:s3:::" + cfg.Buckets.Releases + "/*"},
		{"ParametersRead", "ssm:GetParametersByPath", ":parameter" + cfg.SSMPrefix + "/*"},
		{"ParametersRead", "ssm:GetParameter", ":parameter" + cfg.SSMPrefix},
		{"FailureMail", "ses:SendEmail", ":identity/"},
	}
	for _, tc := range tests {
		s, ok := bySid[tc.sid]
		if !ok {
			t.Errorf("no statement %s", tc.sid)
			continue
		}
		if !contains(asStrings(s["Action"]), tc.action) || !strings.Contains(js(s["Resource"]), tc.resource) {
			t.Errorf("%s: %v on %v, want %s on %s", tc.sid, s["Action"], js(s["Resource"]), tc.action, tc.resource)
		}
	}
	if strings.Contains(js(stmts), cfg.Buckets.Static) {
		t.Errorf("the box can touch the static bucket")
	}
	if strings.Contains(js(bySid["ReleasesRead"]["Action"]), "Put") {
		t.Errorf("the box can write releases")
	}
	if !strings.Contains(js(bySid["FailureMail"]["Condition"]), cfg.Notify.From) {
		t.Errorf("SES not limited to %s", cfg.Notify.From)
	}
}

// 7.4.6 + 7.9.4: the user data only writes the instance file that the image's first boot
// (internal/firstboot, tested there: blank-only formatting, mount by UUID, env from SSM) reads;
// its keys are the contract's (internal/boxspec).
func TestStory7_4_6_and_7_9_4_UserData(t *testing.T) {
	_, box := one(t, PartCompute, "AWS::EC2::Instance")
	ud := js(props(box)["UserData"])
	volID, _ := one(t, PartCompute, "AWS::EC2::Volume")
	for _, want := range []string{"#cloud-config", "path: " + boxspec.InstanceFile, boxspec.KeySSMPrefix + "=" + cfg.SSMPrefix,
		boxspec.KeyRegion + "=" + cfg.Region, boxspec.KeyVolumeID + "=", `{"Ref":"` + volID + `"}`} {
		if !strings.Contains(ud, want) {
			t.Errorf("user data lacks %s:\n%s", want, ud)
		}
	}
	// The old once-only script wrote zmanim.env with every parameter (restic password
	// included) under names the units never read.
	for _, gone := range []string{"zmanim.env", "get-parameters-by-path", "restic-backup.timer", "mkfs"} {
		if strings.Contains(ud, gone) {
			t.Errorf("user data still has %q", gone)
		}
	}
	s, err := RenderUserData(UserDataParams{Region: "eu-west-1", VolumeID: "vol-0abc", SSMPrefix: "/zmanim/prod"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if k, _, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "ZOPS_") {
			keys = append(keys, k)
			if !contains(boxspec.InstanceKeys, k) {
				t.Errorf("user data writes %s, which first boot does not know (boxspec.InstanceKeys)", k)
			}
		}
	}
	if len(keys) != 3 {
		t.Errorf("instance file keys %v, want region, prefix and volume id", keys)
	}
}

// The config parameter carries every field first boot puts into the API's environment.
func TestConfigParameterFeedsAPIEnv(t *testing.T) {
	var fields []string
	for _, k := range boxspec.APIEnv {
		if k.Source == boxspec.FromConfig {
			fields = append(fields, k.Param)
		}
	}
	m := map[string]any{}
	for _, f := range fields {
		m[f] = assertions.Match_AnyValue()
	}
	has(t, PartCompute, "AWS::SSM::Parameter", map[string]any{"Name": cfg.SSM(config.ParamConfig), "Type": "String",
		"Value": assertions.Match_SerializedJson(assertions.Match_ObjectLike(&m))})
}

// The agent tails the file the image really writes (the journal export), not api.log.
func TestAgentTailsWrittenLogFile(t *testing.T) {
	var c struct {
		Logs struct {
			LogsCollected struct {
				Files struct {
					CollectList []struct {
						FilePath string `json:"file_path"`
					} `json:"collect_list"`
				} `json:"files"`
			} `json:"logs_collected"`
		} `json:"logs"`
	}
	if err := json.Unmarshal([]byte(AgentConfig(cfg)), &c); err != nil {
		t.Fatal(err)
	}
	l := c.Logs.LogsCollected.Files.CollectList
	if len(l) != 1 || l[0].FilePath != boxspec.LogFile {
		t.Fatalf("agent tails %+v, want only %s", l, boxspec.LogFile)
	}
}

// 7.4.7: the agent configuration collects memory and disk of / and /data.
func TestStory7_4_7_CloudWatchAgentConfigured(t *testing.T) {
	has(t, PartCompute, "AWS::SSM::Parameter", map[string]any{"Name": cfg.SSM(AgentParam), "Type": "String", "Value": assertions.Match_SerializedJson(map[string]any{
		"agent": assertions.Match_AnyValue(),
		"logs":  assertions.Match_AnyValue(),
		"metrics": assertions.Match_ObjectLike(&map[string]any{
			"namespace": MetricsNS,
			"metrics_collected": map[string]any{
				"mem":  assertions.Match_ObjectLike(&map[string]any{"measurement": []any{"mem_used_percent"}}),
				"disk": assertions.Match_ObjectLike(&map[string]any{"measurement": []any{"used_percent"}, "resources": []any{"/", DataDir}}),
			},
		}),
	})})
}

// 7.9.1: CloudFormation cannot create SecureStrings, so the secrets are put by operators under
// the prefix; the templates hold only references to them (never values).
func TestStory7_9_1_SecretsOnlyReferenced(t *testing.T) {
	for part := range raw {
		for id, p := range res(part, "AWS::SSM::Parameter") {
			name := js(props(p)["Name"])
			for _, secret := range []string{config.ParamClerkSecret, config.ParamPGPassword, config.ParamResticPass, config.ParamOriginVerify} {
				if strings.Contains(name, secret) {
					t.Errorf("%s/%s creates secret parameter %s", part, id, name)
				}
			}
		}
	}
	if !strings.Contains(js(raw[PartEdge]), "{{resolve:ssm:"+cfg.SSM(config.ParamOriginVerify)+"}}") {
		t.Errorf("origin-verify secret not referenced dynamically")
	}
}

func TestStory7_9_2_ConfigParameter(t *testing.T) {
	has(t, PartCompute, "AWS::SSM::Parameter", map[string]any{"Name": cfg.SSM(config.ParamConfig), "Type": "String",
		"Value": assertions.Match_SerializedJson(assertions.Match_ObjectLike(&map[string]any{"domain": cfg.Domain, "port": cfg.Instance.Port}))})
}

// Trap 1: the box is reachable by the gateway only through Cloud Map + VPC link at its private address.
func TestCloudMapRegistersBoxPrivateAddress(t *testing.T) {
	boxID, _ := one(t, PartCompute, "AWS::EC2::Instance")
	has(t, PartCompute, "AWS::ServiceDiscovery::Instance", map[string]any{"InstanceAttributes": map[string]any{
		"AWS_INSTANCE_IPV4": map[string]any{"Fn::GetAtt": []any{boxID, "PrivateIp"}},
		"AWS_INSTANCE_PORT": "8080",
	}})
}

func asStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
