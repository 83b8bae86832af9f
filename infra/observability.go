package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// ObservabilityStackProps configure the alarms and the dashboard (spec: Observability).
type ObservabilityStackProps struct {
	awscdk.StackProps
	Env     *config.Env
	Compute *ComputeStack
	Edge    *EdgeStack
}

// ObservabilityStack holds the alarm topic, the spec's alarms and the dashboard.
type ObservabilityStack struct {
	awscdk.Stack
	Topic  awssns.Topic
	Alarms map[string]awscloudwatch.Alarm
}

// Alarm thresholds from the spec.
const (
	CPUAlarmPercent  = 80
	DiskAlarmPercent = 80
	API5xxPercent    = 1
)

// NewObservabilityStack builds the alarms and dashboard.
func NewObservabilityStack(scope constructs.Construct, id string, props *ObservabilityStackProps) *ObservabilityStack {
	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	e := props.Env
	s := &ObservabilityStack{Stack: stack, Alarms: map[string]awscloudwatch.Alarm{}}
	s.Topic = awssns.NewTopic(stack, jsii.String("Alarms"), &awssns.TopicProps{
		TopicName:   jsii.String("zmanim-" + e.Name + "-alarms"),
		DisplayName: jsii.String("zmanim " + e.Name + " alarms"),
		EnforceSSL:  jsii.Bool(true),
	})
	s.Topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(e.Notify.To), nil))
	action := awscloudwatchactions.NewSnsAction(s.Topic)

	five := awscdk.Duration_Minutes(jsii.Number(5))
	instanceID := props.Compute.Instance.InstanceId()
	apiID := props.Edge.Api.ApiId()
	ec2 := func(name, stat string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String("AWS/EC2"), MetricName: jsii.String(name), Statistic: jsii.String(stat), Period: five,
			DimensionsMap: &map[string]*string{"InstanceId": instanceID}})
	}
	disk := func(path string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String(MetricsNS), MetricName: jsii.String("disk_used_percent"), Statistic: jsii.String("Maximum"), Period: five,
			Label: jsii.String("disk used " + path), DimensionsMap: &map[string]*string{"InstanceId": instanceID, "path": jsii.String(path)}})
	}
	mem := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String(MetricsNS), MetricName: jsii.String("mem_used_percent"), Statistic: jsii.String("Average"), Period: five,
		DimensionsMap: &map[string]*string{"InstanceId": instanceID}})
	api := func(name, stat string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String("AWS/ApiGateway"), MetricName: jsii.String(name), Statistic: jsii.String(stat), Period: five,
			Label: jsii.String(name + " " + stat), DimensionsMap: &map[string]*string{"ApiId": apiID}})
	}
	alarm := func(id, desc string, m awscloudwatch.IMetric, threshold float64, op awscloudwatch.ComparisonOperator, periods float64, missing awscloudwatch.TreatMissingData) {
		a := awscloudwatch.NewAlarm(stack, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmName:          jsii.String(fmt.Sprintf("zmanim-%s-%s", e.Name, id)),
			AlarmDescription:   jsii.String(desc),
			Metric:             m,
			Threshold:          jsii.Number(threshold),
			ComparisonOperator: op,
			EvaluationPeriods:  jsii.Number(periods),
			TreatMissingData:   missing,
		})
		a.AddAlarmAction(action)
		a.AddOkAction(action)
		s.Alarms[id] = a
	}
	gt := awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD
	alarm("cpu-high", "EC2 CPU > 80% for 5 minutes", ec2("CPUUtilization", "Average"), CPUAlarmPercent, gt, 1, awscloudwatch.TreatMissingData_MISSING)
	alarm("disk-root-high", "disk / > 80% used", disk("/"), DiskAlarmPercent, gt, 1, awscloudwatch.TreatMissingData_MISSING)
	alarm("disk-data-high", "disk /data > 80% used", disk(DataDir), DiskAlarmPercent, gt, 1, awscloudwatch.TreatMissingData_MISSING)
	alarm("status-check-failed", "EC2 status check failed (instance or system)", ec2("StatusCheckFailed", "Maximum"), 0, gt, 2, awscloudwatch.TreatMissingData_BREACHING)
	errRate := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("IF(requests > 0, 100 * errors / requests, 0)"),
		Label:      jsii.String("API 5xx %"),
		Period:     five,
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"errors":   api("5xx", "Sum"),
			"requests": api("Count", "Sum"),
		},
	})
	alarm("api-5xx-rate", "API Gateway 5xx > 1% of requests for 5 minutes", errRate, API5xxPercent, gt, 1, awscloudwatch.TreatMissingData_NOT_BREACHING)
	// The backup job puts BackupSucceeded=1 after a verified backup; a day without one alarms
	// (missing data breaches), which also catches a timer that never fired.
	backup := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String(BackupNS), MetricName: jsii.String(BackupMetric), Statistic: jsii.String("Sum"),
		Period: awscdk.Duration_Days(jsii.Number(1)), DimensionsMap: &map[string]*string{"Env": jsii.String(e.Name)}})
	alarm("backup-failed", "no successful backup in the last 24 hours", backup, 1, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, 1, awscloudwatch.TreatMissingData_BREACHING)

	// Dashboard: latency percentiles, cache hit ratio, errors by endpoint, instance utilization.
	cf := func(name string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String("AWS/CloudFront"), MetricName: jsii.String(name), Statistic: jsii.String("Sum"), Period: five,
			Region: jsii.String(CertificateRegion), Label: jsii.String("CloudFront " + name),
			DimensionsMap: &map[string]*string{"DistributionId": props.Edge.Distribution.DistributionId(), "Region": jsii.String("Global")}})
	}
	dash := awscloudwatch.NewDashboard(stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{DashboardName: jsii.String("zmanim-" + e.Name)})
	dash.AddWidgets(
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String("API latency p50 / p95 / p99 (ms)"), Width: jsii.Number(12),
			Left: &[]awscloudwatch.IMetric{api("Latency", "p50"), api("Latency", "p95"), api("Latency", "p99")}}),
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String("Cache hit ratio (% of viewer requests not reaching the API)"), Width: jsii.Number(12),
			Left: &[]awscloudwatch.IMetric{awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
				Expression: jsii.String("IF(viewer > 0, 100 * (1 - origin / viewer), 0)"), Label: jsii.String("hit %"), Period: five,
				UsingMetrics: &map[string]awscloudwatch.IMetric{"viewer": cf("Requests"), "origin": api("Count", "Sum")},
			})},
			Right: &[]awscloudwatch.IMetric{cf("Requests"), api("Count", "Sum")}}),
	)
	dash.AddWidgets(
		awscloudwatch.NewLogQueryWidget(&awscloudwatch.LogQueryWidgetProps{Title: jsii.String("Errors by endpoint"), Width: jsii.Number(12),
			LogGroupNames: &[]*string{props.Edge.AccessLogs.LogGroupName()},
			QueryLines:    jsii.Strings("fields routeKey, status", "filter status >= 400", "stats count(*) as errors by routeKey, status", "sort errors desc")}),
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String("Instance utilization (%)"), Width: jsii.Number(12),
			Left: &[]awscloudwatch.IMetric{ec2("CPUUtilization", "Average"), mem, disk("/"), disk(DataDir)}}),
	)
	alarms := make([]interfacesawscloudwatch.IAlarmRef, 0, len(s.Alarms))
	for _, id := range []string{"cpu-high", "disk-root-high", "disk-data-high", "status-check-failed", "api-5xx-rate", "backup-failed"} {
		alarms = append(alarms, s.Alarms[id])
	}
	dash.AddWidgets(awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{Title: jsii.String("Alarms"), Width: jsii.Number(24), Alarms: &alarms}))
	return s
}
