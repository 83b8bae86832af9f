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
	_, lt := one(t, PartCompute, "AWS::EC2::LaunchTemplate")
	d := props(lt)["LaunchTemplateData"].(map[string]any)
	if d["InstanceType"] != cfg.Instance.Type || cfg.Instance.Type != "m7g.medium" {
		t.Errorf("instance type %v", d["InstanceType"])
	}
	// The AMI is the SSM parameter the Packer pipeline writes, resolved by EC2 at each launch
	// (so a rollout changes the parameter and refreshes; no stack change).
	if d["ImageId"] != "resolve:ssm:"+cfg.Instance.AMIParameter {
		t.Errorf("ImageId %v, want resolve:ssm:%s", d["ImageId"], cfg.Instance.AMIParameter)
	}
	has(t, PartCompute, "AWS::EC2::LaunchTemplate", map[string]any{"LaunchTemplateData": assertions.Match_ObjectLike(&map[string]any{
		"MetadataOptions": map[string]any{"HttpTokens": "required", "HttpPutResponseHopLimit": 1}})})
	_, g := one(t, PartCompute, "AWS::AutoScaling::AutoScalingGroup")
	named := false
	for _, tag := range props(g)["Tags"].([]any) {
		m := tag.(map[string]any)
		named = named || (m["Key"] == "Name" && m["Value"] == "zmanim-prod-box" && m["PropagateAtLaunch"] == true)
	}
	if !named {
		t.Errorf("the box lacks the tag Name=zmanim-prod-box that the release's SSM deployer looks for: %v", props(g)["Tags"])
	}
}

func TestStory7_4_2_RootVolume10GBGp3Encrypted(t *testing.T) {
	has(t, PartCompute, "AWS::EC2::LaunchTemplate", map[string]any{"LaunchTemplateData": assertions.Match_ObjectLike(&map[string]any{
		"BlockDeviceMappings": []any{map[string]any{
			"DeviceName": RootDevice,
			"Ebs":        map[string]any{"VolumeSize": cfg.Instance.RootVolumeGB, "VolumeType": "gp3", "Encrypted": true, "DeleteOnTermination": true},
		}},
	})})
	if cfg.Instance.RootVolumeGB != 10 {
		t.Errorf("root volume %d GB", cfg.Instance.RootVolumeGB)
	}
}

// 7.4.3 with trap 4: the data volume is its own resource, retained on replacement and deletion,
// attached as a separate resource, in the box's zone.
func TestStory7_4_3_DataVolume20GBRetained_Trap4(t *testing.T) {
	_, v := one(t, PartCompute, "AWS::EC2::Volume")
	p := props(v)
	if js(p["Size"]) != "20" || p["VolumeType"] != "gp3" || p["Encrypted"] != true {
		t.Errorf("data volume %v", p)
	}
	if v["DeletionPolicy"] != "Retain" || v["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("data volume policies %v/%v, want Retain", v["DeletionPolicy"], v["UpdateReplacePolicy"])
	}
}

// 7.4.4: the Elastic IP is the stack's (retained); the live box associates it at first boot.
func TestStory7_4_4_ElasticIPAttached(t *testing.T) {
	eip, e := one(t, PartCompute, "AWS::EC2::EIP")
	if e["DeletionPolicy"] != "Retain" {
		t.Errorf("Elastic IP not retained")
	}
	if !strings.Contains(boxParam(t), eip) {
		t.Errorf("the box parameter does not name the Elastic IP %s: %s", eip, boxParam(t))
	}
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
	_, lt := one(t, PartCompute, "AWS::EC2::LaunchTemplate")
	ud := js(props(lt)["LaunchTemplateData"].(map[string]any)["UserData"])
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

// Trap 1: the box is reachable by the gateway only through Cloud Map + VPC link at its private
// address, registered by the box itself (firstboot/claim) in the stack's service.
func TestCloudMapServiceForTheBox(t *testing.T) {
	svc, _ := one(t, PartCompute, "AWS::ServiceDiscovery::Service")
	count(t, PartCompute, "AWS::ServiceDiscovery::Instance", 0)
	if !strings.Contains(boxParam(t), svc) {
		t.Errorf("the box parameter does not name the Cloud Map service %s", svc)
	}
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
