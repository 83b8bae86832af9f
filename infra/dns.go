package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// DnsStackProps configure the zone, the CloudFront certificate and the health check (story
// 7.8). The stack lives in us-east-1 because CloudFront takes certificates only from there.
type DnsStackProps struct {
	awscdk.StackProps
	Env *config.Env
	// HostedZoneID imports an existing zone; empty creates the public zone (retained on delete).
	HostedZoneID string
	// HealthCheckRegions are the Route 53 checker regions (three is the minimum).
	HealthCheckRegions []string
}

// DnsStack holds the zone, the DNS-validated certificate and the /health check. The alias
// records live in the Edge stack next to the distribution they point at (a record here would
// make Dns and Edge depend on each other).
type DnsStack struct {
	awscdk.Stack
	Zone        awsroute53.IHostedZone
	Certificate awscertificatemanager.Certificate
	HealthCheck awsroute53.CfnHealthCheck
	// HealthAlarm watches the health check (us-east-1, where its metric lives) and notifies
	// Topic, this region's alarm topic.
	HealthAlarm awscloudwatch.Alarm
	Topic       awssns.Topic
}

// NewDnsStack builds the DNS stack.
func NewDnsStack(scope constructs.Construct, id string, props *DnsStackProps) *DnsStack {
	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	e := props.Env
	var zone awsroute53.IHostedZone
	if props.HostedZoneID != "" {
		zone = awsroute53.HostedZone_FromHostedZoneAttributes(stack, jsii.String("Zone"), &awsroute53.HostedZoneAttributes{
			HostedZoneId: jsii.String(props.HostedZoneID),
			ZoneName:     jsii.String(e.HostedZone),
		})
	} else {
		z := awsroute53.NewPublicHostedZone(stack, jsii.String("Zone"), &awsroute53.PublicHostedZoneProps{
			ZoneName: jsii.String(e.HostedZone),
			Comment:  jsii.String("zmanim " + e.Name + ": delegate " + e.HostedZone + " to these name servers at the registrar"),
		})
		z.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN)
		awscdk.NewCfnOutput(stack, jsii.String("NameServers"), &awscdk.CfnOutputProps{Value: awscdk.Fn_Join(jsii.String(","), z.HostedZoneNameServers())})
		zone = z
	}
	// 7.8.1 + 7.8.2: ACM certificate for the domain, validated through records in the zone.
	cert := awscertificatemanager.NewCertificate(stack, jsii.String("Certificate"), &awscertificatemanager.CertificateProps{
		DomainName:      jsii.String(e.Domain),
		CertificateName: jsii.String("zmanim-" + e.Name),
		Validation:      awscertificatemanager.CertificateValidation_FromDns(zone),
	})
	// 7.8.4: Route 53 checks https://<domain>/health through the whole path (CloudFront, API
	// Gateway, VPC link, box). /health is never cached at the edge, so the check sees the box.
	hc := awsroute53.NewCfnHealthCheck(stack, jsii.String("HealthCheck"), &awsroute53.CfnHealthCheckProps{
		HealthCheckConfig: &awsroute53.CfnHealthCheck_HealthCheckConfigProperty{
			Type:                     jsii.String("HTTPS"),
			FullyQualifiedDomainName: jsii.String(e.Domain),
			Port:                     jsii.Number(443),
			ResourcePath:             jsii.String("/health"),
			EnableSni:                jsii.Bool(true),
			RequestInterval:          jsii.Number(30),
			FailureThreshold:         jsii.Number(3),
			Regions:                  jsii.Strings(props.HealthCheckRegions...),
		},
		HealthCheckTags: &[]*awsroute53.CfnHealthCheck_HealthCheckTagProperty{{Key: jsii.String("Name"), Value: jsii.String("zmanim-" + e.Name + "-health")}},
	})
	awscdk.NewCfnOutput(stack, jsii.String("HealthCheckId"), &awscdk.CfnOutputProps{Value: hc.AttrHealthCheckId()})

	// The health check's alarm. Route 53 publishes HealthCheckStatus in us-east-1 only, and an
	// alarm must live in its metric's region and notify a topic of that region: hence a
	// second alarm topic here, subscribed by the same address as the one in eu-west-1.
	topic := awssns.NewTopic(stack, jsii.String("Alarms"), &awssns.TopicProps{
		TopicName:   jsii.String("zmanim-" + e.Name + "-alarms-us-east-1"),
		DisplayName: jsii.String("zmanim " + e.Name + " alarms (us-east-1)"),
		EnforceSSL:  jsii.Bool(true),
	})
	topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(e.Notify.To), nil))
	status := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String("AWS/Route53"), MetricName: jsii.String("HealthCheckStatus"), Statistic: jsii.String("Minimum"),
		Period: awscdk.Duration_Minutes(jsii.Number(1)), DimensionsMap: &map[string]*string{"HealthCheckId": hc.AttrHealthCheckId()},
	})
	alarm := awscloudwatch.NewAlarm(stack, jsii.String("HealthAlarm"), &awscloudwatch.AlarmProps{
		AlarmName:          jsii.String("zmanim-" + e.Name + "-health"),
		AlarmDescription:   jsii.String("https://" + e.Domain + "/health failing from Route 53's checkers for 3 minutes (edge, gateway, VPC link or box)"),
		Metric:             status,
		Threshold:          jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(3),
		DatapointsToAlarm:  jsii.Number(3),
		TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING, // a check that stopped reporting is not a healthy site
	})
	action := awscloudwatchactions.NewSnsAction(topic)
	alarm.AddAlarmAction(action)
	alarm.AddOkAction(action)
	return &DnsStack{Stack: stack, Zone: zone, Certificate: cert, HealthCheck: hc, HealthAlarm: alarm, Topic: topic}
}
