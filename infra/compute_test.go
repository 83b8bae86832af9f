package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

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

// 7.4.6 + 7.9.4: the boot script names the data volume, mounts /data, exports the prefix.
func TestStory7_4_6_and_7_9_4_UserData(t *testing.T) {
	_, box := one(t, PartCompute, "AWS::EC2::Instance")
	ud := js(props(box)["UserData"])
	volID, _ := one(t, PartCompute, "AWS::EC2::Volume")
	for _, want := range []string{`{"Ref":"` + volID + `"}`, `SSM_PREFIX=\"` + cfg.SSMPrefix, `DATA_DIR=\"/data`, "get-parameters-by-path", "blkid -p", "systemctl enable --now", "amazon-cloudwatch-agent-ctl"} {
		if !strings.Contains(ud, want) {
			t.Errorf("user data lacks %s", want)
		}
	}
}

// Trap 4 on the box: the boot script formats only a volume blkid finds blank, keeps one with
// data, and stops on any other answer; it mounts by UUID. Run with stubbed system commands.
func TestStory7_4_6_BootScript_FormatsOnlyBlankVolume_Trap4(t *testing.T) {
	dir := t.TempDir()
	script := renderTestScript(t, dir)
	tests := []struct {
		name     string
		blkidRC  string
		wantFail bool
		wantMkfs bool
	}{
		{"blank volume is formatted", "2", false, true},
		{"volume with a filesystem is kept", "0", false, false},
		{"probe error refuses", "4", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "calls")
			out, err := runScript(t, dir, script, "prepare_volume /dev/fakedata", "BLKID_RC="+tc.blkidRC, "CALLS="+log)
			calls, _ := os.ReadFile(log)
			if (err != nil) != tc.wantFail {
				t.Fatalf("err=%v, want fail=%v\n%s", err, tc.wantFail, out)
			}
			if got := strings.Contains(string(calls), "mkfs.xfs -L "+DataLabel+" /dev/fakedata"); got != tc.wantMkfs {
				t.Errorf("mkfs called=%v, want %v; calls:\n%s", got, tc.wantMkfs, calls)
			}
		})
	}
	t.Run("mount by UUID replaces an old /data line", func(t *testing.T) {
		fstab := filepath.Join(t.TempDir(), "fstab")
		os.WriteFile(fstab, []byte("UUID=root / xfs defaults 0 0\n/dev/nvme1n1 "+filepath.Join(dir, "data")+" xfs defaults 0 2\n"), 0o644)
		log := filepath.Join(t.TempDir(), "calls")
		out, err := runScript(t, dir, script, "mount_data /dev/fakedata", "BLKID_RC=0", "CALLS="+log, "FSTAB="+fstab)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		b, _ := os.ReadFile(fstab)
		want := "UUID=root / xfs defaults 0 0\nUUID=1111-2222 " + filepath.Join(dir, "data") + " xfs defaults,noatime,nofail 0 2\n"
		if string(b) != want {
			t.Errorf("fstab:\n%s\nwant:\n%s", b, want)
		}
	})
	t.Run("volume never attached", func(t *testing.T) {
		out, err := runScript(t, dir, script, "wait_for_volume", "DEVICE_WAIT_SECONDS=0")
		if err == nil || !strings.Contains(out, "is not attached") {
			t.Errorf("err=%v out=%s", err, out)
		}
	})
}

// 7.9.4: parameters become NAME="value" lines in a 0640 file; the agent config is left out.
func TestStory7_9_4_BootScript_ExportsParameters(t *testing.T) {
	dir := t.TempDir()
	script := renderTestScript(t, dir)
	params := map[string]any{"Parameters": []map[string]string{
		{"Name": cfg.SSM(config.ParamClerkSecret), "Value": `sk_"quoted"\back`},
		{"Name": cfg.SSM(config.ParamConfig), "Value": `{"env":"prod"}`},
		{"Name": cfg.SSM(AgentParam), "Value": `{"agent":{}}`},
	}}
	b, _ := json.Marshal(params)
	pfile := filepath.Join(dir, "params.json")
	os.WriteFile(pfile, b, 0o600)
	out, err := runScript(t, dir, script, "write_env", "PARAMS="+pfile)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	env := filepath.Join(dir, "etc", "zmanim.env")
	st, err := os.Stat(env)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("env file mode %v, want 0640", st.Mode().Perm())
	}
	got, _ := os.ReadFile(env)
	want := `CLERK_SECRET_KEY="sk_\"quoted\"\\back"` + "\n" + `CONFIG="{\"env\":\"prod\"}"` + "\n"
	if string(got) != want {
		t.Errorf("env file:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(out, "sk_") {
		t.Errorf("the script printed a secret: %s", out)
	}
}

func TestBootScriptShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		if os.Getenv("ZOPS_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("shellcheck not found (apt-get install shellcheck)")
		}
		t.Skip("shellcheck not installed")
	}
	dir := t.TempDir()
	script := renderTestScript(t, dir)
	if out, err := exec.Command(sc, "-s", "bash", script).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
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

func renderTestScript(t *testing.T, dir string) string {
	t.Helper()
	group := "root"
	if u, err := user.Current(); err == nil {
		if g, err := user.LookupGroupId(u.Gid); err == nil {
			group = g.Name
		}
	}
	s, err := RenderUserData(UserDataParams{Region: "eu-west-1", VolumeID: "vol-0abc", SSMPrefix: cfg.SSMPrefix, DataDir: filepath.Join(dir, "data"),
		Label: DataLabel, ServiceGroup: group, EnvFile: filepath.Join(dir, "etc", "zmanim.env"), AgentParam: cfg.SSM(AgentParam), Services: BoxServices})
	if err != nil {
		t.Fatal(err)
	}
	// Stubs for the system commands the steps call.
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	stubs := map[string]string{
		"blkid":      "echo \"blkid $*\" >>\"${CALLS:-/dev/null}\"\ncase \"$*\" in *UUID*) echo 1111-2222; exit 0;; esac\nexit \"${BLKID_RC:-0}\"",
		"mkfs.xfs":   "echo \"mkfs.xfs $*\" >>\"${CALLS:-/dev/null}\"",
		"mountpoint": "exit 1",
		"mount":      "echo \"mount $*\" >>\"${CALLS:-/dev/null}\"",
		"aws":        "cat \"$PARAMS\"",
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "userdata.sh")
	if err := os.WriteFile(path, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func runScript(t *testing.T, dir, script, call string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-c", `source "$1"; `+call, "bash", script)
	cmd.Env = append(os.Environ(), append([]string{"PATH=" + filepath.Join(dir, "bin") + ":" + os.Getenv("PATH")}, env...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
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
