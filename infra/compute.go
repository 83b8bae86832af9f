package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsservicediscovery"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/config"
)

// ComputeStackProps configure the box (stories 7.4, 7.9).
type ComputeStackProps struct {
	awscdk.StackProps
	Env     *config.Env
	Network *NetworkStack
	// AvailabilityZone of the subnet; the data volume must live in the same zone.
	AvailabilityZone string
}

// ComputeStack is the single Graviton box (an Auto Scaling group of one), its persistent data
// volume, Elastic IP, role, the non-secret SSM parameters and the Cloud Map service the API
// Gateway VPC link resolves.
type ComputeStack struct {
	awscdk.Stack
	// Group is the box's Auto Scaling group (min = max = 1), GroupName its fixed name;
	// LaunchTemplate resolves the image from the SSM image parameter at launch.
	Group          awsautoscaling.AutoScalingGroup
	GroupName      string
	LaunchTemplate awsec2.LaunchTemplate
	DataVolume     awsec2.Volume
	Role           awsiam.Role
	EIP            awsec2.CfnEIP
	// BoxService is the Cloud Map service holding the box's private address and API port.
	BoxService awsservicediscovery.Service
}

// Names used on the box come from its contract (internal/boxspec), which the image recipe, the
// units, first boot and zops-backup read as well.
const (
	DataDir       = boxspec.DataDir
	DataDevice    = "/dev/sdf"           // requested at attachment; Nitro ignores it (first boot uses the volume id)
	RootDevice    = "/dev/xvda"          // Amazon Linux 2023
	AgentParam    = boxspec.ParamCWAgent // under the SSM prefix; first boot loads it into the agent
	MetricsNS     = "CWAgent"
	BackupNS      = "Zmanim/Backup" // zops-backup puts BackupSucceeded=1 (dimension Env) after each good run
	BackupMetric  = "BackupSucceeded"
	CloudMapName  = "box"
	namespaceName = "zmanim.internal"
)

//go:embed assets/userdata.yaml
var userDataTemplate string

// UserDataParams fill assets/userdata.yaml: the instance file first boot reads.
type UserDataParams struct {
	Region, VolumeID, SSMPrefix string
}

// RenderUserData renders the cloud-config user data.
func RenderUserData(p UserDataParams) (string, error) {
	t, err := template.New("userdata").Option("missingkey=error").Parse(userDataTemplate)
	if err != nil {
		return "", fmt.Errorf("parse user data: %w", err)
	}
	data := map[string]string{
		"Region": p.Region, "VolumeID": p.VolumeID, "SSMPrefix": p.SSMPrefix,
		"InstanceFile": boxspec.InstanceFile, "APIEnvFile": boxspec.APIEnvFile,
		"KeyRegion": boxspec.KeyRegion, "KeySSMPrefix": boxspec.KeySSMPrefix, "KeyVolumeID": boxspec.KeyVolumeID,
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("render user data: %w", err)
	}
	return b.String(), nil
}

// NewComputeStack builds the box.
//
// Instance replacement (DESIGN.md trap 4): CloudFormation would create a replacement instance
// before deleting the old one, but the data volume attaches to one instance at a time. So the
// stack has no instance: an Auto Scaling group of one replaces it, always terminating first
// (box_group.go), and the new box attaches the retained volume itself; first boot never
// formats a volume that has any signature.
func NewComputeStack(scope constructs.Construct, id string, props *ComputeStackProps) *ComputeStack {
	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	e := props.Env
	region := e.Region
	ssmPrefix := strings.TrimSuffix(e.SSMPrefix, "/")
	account := *stack.Account()

	role := awsiam.NewRole(stack, jsii.String("BoxRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("ec2.amazonaws.com"), nil),
		Description: jsii.String("zmanim box: its buckets, its SSM parameters, SES for failure mail, CloudWatch agent"),
		// Session Manager and Run Command (release path 2: SSM SendCommand) need the agent's core policy.
		ManagedPolicies: &[]awsiam.IManagedPolicy{awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("AmazonSSMManagedInstanceCore"))},
	})
	bucketArn := func(name string) string { return "arn:aws:s3:::" + name }
	// Backups: restic reads, writes and prunes its repository (7.5). The bucket is versioned, so
	// a delete by the box only adds a delete marker; what could end the history (deleting
	// versions, versioning, lifecycle, policy, object lock) is denied explicitly, so a
	// compromised box cannot destroy the backups (issue 14 finding 3; config/backupaccess.go).
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("BackupsList"),
		Actions:   jsii.Strings(config.BoxBackupBucketActions...),
		Resources: jsii.Strings(bucketArn(e.Buckets.Backups)),
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("BackupsObjects"),
		Actions:   jsii.Strings(config.BoxBackupObjectActions...),
		Resources: jsii.Strings(bucketArn(e.Buckets.Backups) + "/*"),
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("BackupsHistoryProtected"),
		Effect:    awsiam.Effect_DENY,
		Actions:   jsii.Strings(config.BoxBackupDeniedActions...),
		Resources: jsii.Strings(bucketArn(e.Buckets.Backups), bucketArn(e.Buckets.Backups)+"/*"),
	}))
	// Releases: read only (the box downloads binaries, never writes them).
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReleasesRead"),
		Actions:   jsii.Strings("s3:ListBucket", "s3:GetObject"),
		Resources: jsii.Strings(bucketArn(e.Buckets.Releases), bucketArn(e.Buckets.Releases)+"/*"),
	}))
	// SSM: its own parameters only (7.9.3); SecureStrings use the aws/ssm key, whose key policy
	// already lets account principals decrypt through SSM.
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ParametersRead"),
		Actions:   jsii.Strings("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"),
		Resources: jsii.Strings(fmt.Sprintf("arn:aws:ssm:%s:%s:parameter%s", region, account, ssmPrefix), fmt.Sprintf("arn:aws:ssm:%s:%s:parameter%s/*", region, account, ssmPrefix)),
	}))
	// SES: failure mail from the notify address only.
	fromDomain := e.Notify.From[strings.LastIndex(e.Notify.From, "@")+1:]
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("FailureMail"),
		Actions:    jsii.Strings("ses:SendEmail", "ses:SendRawEmail"),
		Resources:  jsii.Strings(fmt.Sprintf("arn:aws:ses:%s:%s:identity/%s", region, account, fromDomain), fmt.Sprintf("arn:aws:ses:%s:%s:identity/%s", region, account, e.Notify.From)),
		Conditions: &map[string]any{"StringEquals": map[string]any{"ses:FromAddress": e.Notify.From}},
	}))
	// CloudWatch agent: metrics into its namespace and the backup namespace, logs into the box's groups.
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("Metrics"),
		Actions:    jsii.Strings("cloudwatch:PutMetricData"),
		Resources:  jsii.Strings("*"), // PutMetricData has no resource type; the condition scopes it
		Conditions: &map[string]any{"StringEquals": map[string]any{"cloudwatch:namespace": []string{MetricsNS, BackupNS}}},
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("Logs"),
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
		Resources: jsii.Strings(fmt.Sprintf("arn:aws:logs:%s:%s:log-group:/zmanim/%s/*", region, account, e.Name)),
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AgentTags"),
		Actions:    jsii.Strings("ec2:DescribeTags"),
		Resources:  jsii.Strings("*"), // DescribeTags has no resource type
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": region}},
	}))

	// The non-secret configuration (7.9.2) and the agent configuration. Secrets (clerk, postgres,
	// restic, origin-verify) are put by operators: CloudFormation cannot create SecureStrings.
	cfgJSON, _ := json.Marshal(map[string]any{
		"env": e.Name, "region": region, "domain": e.Domain, "port": e.Instance.Port,
		"buckets": e.Buckets, "data_dir": DataDir,
		// First boot writes these into the API's environment (boxspec.APIEnv).
		boxspec.ConfigOriginHeader: e.API.OriginVerifyHeader,
		boxspec.ConfigJWKSURL:      e.API.Authorizers[config.AuthorizerJWT].JWKS(),
		boxspec.ConfigJWTIssuer:    e.API.Authorizers[config.AuthorizerJWT].Issuer,
		boxspec.ConfigJWTAudience:  e.API.Authorizers[config.AuthorizerJWT].Audience[0],
	})
	awsssm.NewStringParameter(stack, jsii.String("ConfigParam"), &awsssm.StringParameterProps{
		ParameterName: jsii.String(e.SSM(config.ParamConfig)),
		StringValue:   jsii.String(string(cfgJSON)),
		Description:   jsii.String("zmanim non-secret configuration (JSON)"),
		Tier:          awsssm.ParameterTier_STANDARD,
	})
	awsssm.NewStringParameter(stack, jsii.String("AgentParam"), &awsssm.StringParameterProps{
		ParameterName: jsii.String(e.SSM(AgentParam)),
		StringValue:   jsii.String(AgentConfig(e)),
		Description:   jsii.String("CloudWatch agent configuration of the zmanim box"),
		Tier:          awsssm.ParameterTier_STANDARD,
	})

	// A lost volume is replaced by raising instance.data_volume_generation: a new logical id
	// makes CloudFormation create a new blank volume (the old one is retained, if it exists).
	volumeID := "DataVolume"
	if g := e.Instance.DataVolumeGeneration; g > 1 {
		volumeID = fmt.Sprintf("DataVolume%d", g)
	}
	volume := awsec2.NewVolume(stack, jsii.String(volumeID), &awsec2.VolumeProps{
		AvailabilityZone: jsii.String(props.AvailabilityZone),
		Size:             awscdk.Size_Gibibytes(jsii.Number(float64(e.Instance.DataVolumeGB))),
		VolumeType:       awsec2.EbsDeviceVolumeType_GP3,
		Encrypted:        jsii.Bool(true),
		RemovalPolicy:    awscdk.RemovalPolicy_RETAIN,
		VolumeName:       jsii.String("zmanim-" + e.Name + "-data"),
	})

	script, err := RenderUserData(UserDataParams{Region: region, VolumeID: *volume.VolumeId(), SSMPrefix: ssmPrefix})
	if err != nil {
		panic(err) // the template is embedded; a failure is a programming error caught by the tests
	}

	eip := awsec2.NewCfnEIP(stack, jsii.String("EIP"), &awsec2.CfnEIPProps{Domain: jsii.String("vpc")})
	eip.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil) // keep the address (admin allow-lists) across rebuilds

	ns := awsservicediscovery.NewHttpNamespace(stack, jsii.String("Namespace"), &awsservicediscovery.HttpNamespaceProps{
		Name:        jsii.String(e.Name + "." + namespaceName),
		Description: jsii.String("private discovery of the zmanim box for the API Gateway VPC link"),
	})
	svc := ns.CreateService(jsii.String("BoxService"), &awsservicediscovery.BaseServiceProps{
		Name:        jsii.String(CloudMapName),
		Description: jsii.String("the zmanim API on the box (registered by the box's first boot)"),
	})

	// The box: an Auto Scaling group of exactly one (box_group.go, infra/README.md "Who
	// replaces the box"). It owns no attachment, association or Cloud Map instance: the box
	// claims them at first boot.
	c := &ComputeStack{Stack: stack, DataVolume: volume, Role: role, EIP: eip, BoxService: svc, GroupName: GroupName(e.Name)}
	newBoxGroup(stack, c, e, props, script)
	awscdk.NewCfnOutput(stack, jsii.String("GroupName"), &awscdk.CfnOutputProps{Value: c.Group.AutoScalingGroupName()})
	awscdk.NewCfnOutput(stack, jsii.String("DataVolumeId"), &awscdk.CfnOutputProps{Value: volume.VolumeId()})
	awscdk.NewCfnOutput(stack, jsii.String("ElasticIp"), &awscdk.CfnOutputProps{Value: eip.AttrPublicIp()})
	return c
}

// AgentConfig is the CloudWatch agent configuration (7.4.7): memory and disk use of / and /data
// with the instance id as dimension (the alarms and dashboard use these), and the service logs.
func AgentConfig(e *config.Env) string {
	logs := func(file, group string) map[string]any {
		return map[string]any{"file_path": file, "log_group_name": fmt.Sprintf("/zmanim/%s/%s", e.Name, group), "log_stream_name": "{instance_id}", "retention_in_days": 30}
	}
	c := map[string]any{
		"agent": map[string]any{"metrics_collection_interval": 60, "run_as_user": "cwagent"},
		"metrics": map[string]any{
			"namespace": MetricsNS,
			// The alarms read the group's aggregate: the instance id changes with each replacement.
			"append_dimensions":      map[string]any{"InstanceId": "${aws:InstanceId}", "AutoScalingGroupName": "${aws:AutoScalingGroupName}"},
			"aggregation_dimensions": [][]string{{"AutoScalingGroupName", "path"}, {"AutoScalingGroupName"}},
			"metrics_collected": map[string]any{
				"mem":  map[string]any{"measurement": []string{"mem_used_percent"}},
				"disk": map[string]any{"measurement": []string{"used_percent"}, "resources": []string{"/", DataDir}, "drop_device": true, "ignore_file_system_types": []string{"sysfs", "devtmpfs", "tmpfs"}},
			},
		},
		// Every service logs to the journal; zmanim-journal-export (packer/recipe/60-logs.sh)
		// copies the box's units' journal to this file, the one the agent can tail; the
		// observability stack owns its group (BoxLogGroup) and an alarm on its silence.
		"logs": map[string]any{"logs_collected": map[string]any{"files": map[string]any{"collect_list": []any{
			logs(boxspec.LogFile, "box"),
		}}}},
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// BoxNameTag is the Name tag of the box, the one internal/release looks for.
func BoxNameTag(env string) string { return "zmanim-" + env + "-box" }
