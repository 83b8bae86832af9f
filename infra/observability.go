package main

import (
	"fmt"
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsbudgets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
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
	Topic   awssns.Topic
	Alarms  map[string]awscloudwatch.Alarm
	BoxLogs awslogs.LogGroup
	Budget  awsbudgets.CfnBudget
}

// Alarm thresholds from the spec.
const (
	CPUAlarmPercent  = 80
	DiskAlarmPercent = 80
	API5xxPercent    = 1
	// BackupGraceHours is how long after its scheduled time a backup may still succeed before
	// the alarm counts it missing (a run takes minutes; Persistent=true catches up after a
	// reboot).
	BackupGraceHours = 2
	// Budget notifications: actual spend above 80% of the budget, forecast above 100%.
	BudgetActualPercent   = 80
	BudgetForecastPercent = 100
)

// BoxLogGroup is the log group the CloudWatch agent ships the box's journal to.
func BoxLogGroup(env string) string { return "/zmanim/" + env + "/box" }

// BackupAlarmHours is the backup alarm's window: the interval of backup.schedule plus the
// grace. Only daily schedules (systemd "*-*-* HH:MM:SS ...") are understood; NewApp refuses
// others (see scheduleProblem).
func BackupAlarmHours(e *config.Env) int { return 24 + BackupGraceHours }

// dailyCalendar matches a systemd OnCalendar that fires once a day.
var dailyCalendar = regexp.MustCompile(`^\*-\*-\* \d{2}:\d{2}(:\d{2})?( UTC)?$`)

// scheduleProblem explains a backup.schedule the backup alarm cannot follow.
func scheduleProblem(schedule string) string {
	if dailyCalendar.MatchString(schedule) {
		return ""
	}
	return fmt.Sprintf("backup.schedule %q: the backup alarm expects a daily schedule such as \"*-*-* 03:00:00 UTC\" (its window is 24h + %dh grace)", schedule, BackupGraceHours)
}

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
	// The box's instance id changes with every replacement: its metrics are read by the
	// Auto Scaling group (EC2 publishes AutoScalingGroupName aggregates; the agent aggregates
	// on the same dimension, see AgentConfig), so the alarms follow the live box.
	group := jsii.String(props.Compute.GroupName)
	apiID := props.Edge.Api.ApiId()
	ec2 := func(name, stat string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String("AWS/EC2"), MetricName: jsii.String(name), Statistic: jsii.String(stat), Period: five,
			DimensionsMap: &map[string]*string{"AutoScalingGroupName": group}})
	}
	disk := func(path string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String(MetricsNS), MetricName: jsii.String("disk_used_percent"), Statistic: jsii.String("Maximum"), Period: five,
			Label: jsii.String("disk used " + path), DimensionsMap: &map[string]*string{"AutoScalingGroupName": group, "path": jsii.String(path)}})
	}
	mem := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String(MetricsNS), MetricName: jsii.String("mem_used_percent"), Statistic: jsii.String("Average"), Period: five,
		DimensionsMap: &map[string]*string{"AutoScalingGroupName": group}})
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
			DatapointsToAlarm:  jsii.Number(periods), // every period must breach
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
	// zops-backup puts BackupSucceeded=1 (dimension Env) after each good backup run. The alarm
	// looks at hourly sums over the backup interval plus a grace period: it fires only when
	// none of those hours saw a success, i.e. when the schedule has had its chance and a run
	// failed or never happened (missing data counts as failure, which also catches a timer
	// that never fired). A daily period would alarm every morning before the 03:00 run.
	window := BackupAlarmHours(e)
	backup := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String(BackupNS), MetricName: jsii.String(BackupMetric), Statistic: jsii.String("Sum"),
		Period: awscdk.Duration_Hours(jsii.Number(1)), DimensionsMap: &map[string]*string{"Env": jsii.String(e.Name)}})
	alarm("backup-failed", fmt.Sprintf("no successful backup in the last %d hours (schedule %s plus %dh grace)", window, e.Backup.Schedule, BackupGraceHours),
		backup, 1, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, float64(window), awscloudwatch.TreatMissingData_BREACHING)

	// The box's logs: every service writes to the journal, zmanim-journal-export copies the
	// box's units (API, PostgreSQL, Redis, first boot, backups) to boxspec.LogFile, and the
	// CloudWatch agent ships that file to this group (AgentConfig). The group is the stack's,
	// with its retention; an hour without a single event means the shipping broke.
	logs := awslogs.NewLogGroup(stack, jsii.String("BoxLogs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String(BoxLogGroup(e.Name)),
		Retention:     awslogs.RetentionDays_ONE_MONTH,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	s.BoxLogs = logs
	incoming := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String("AWS/Logs"), MetricName: jsii.String("IncomingLogEvents"), Statistic: jsii.String("Sum"),
		Period: awscdk.Duration_Hours(jsii.Number(1)), DimensionsMap: &map[string]*string{"LogGroupName": logs.LogGroupName()}})
	alarm("logs-silent", "no log events from the box for an hour: the agent or the journal export stopped", incoming, 1, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, 1, awscloudwatch.TreatMissingData_BREACHING)

	// The monthly budget (budget.monthly_usd) with actual and forecast notifications to the
	// same topic. Budgets publishes to SNS only when the topic's policy lets it.
	s.Topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("BudgetsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("budgets.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  jsii.Strings(*s.Topic.TopicArn()),
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": *stack.Account()}},
	}))
	notify := func(kind string, percent float64) *awsbudgets.CfnBudget_NotificationWithSubscribersProperty {
		return &awsbudgets.CfnBudget_NotificationWithSubscribersProperty{
			Notification: &awsbudgets.CfnBudget_NotificationProperty{
				NotificationType: jsii.String(kind), ComparisonOperator: jsii.String("GREATER_THAN"),
				Threshold: jsii.Number(percent), ThresholdType: jsii.String("PERCENTAGE"),
			},
			Subscribers: []any{&awsbudgets.CfnBudget_SubscriberProperty{SubscriptionType: jsii.String("SNS"), Address: s.Topic.TopicArn()}},
		}
	}
	s.Budget = awsbudgets.NewCfnBudget(stack, jsii.String("Budget"), &awsbudgets.CfnBudgetProps{
		Budget: &awsbudgets.CfnBudget_BudgetDataProperty{
			BudgetName:  jsii.String("zmanim-" + e.Name + "-monthly"),
			BudgetType:  jsii.String("COST"),
			TimeUnit:    jsii.String("MONTHLY"),
			BudgetLimit: &awsbudgets.CfnBudget_SpendProperty{Amount: jsii.Number(e.Budget.MonthlyUSD), Unit: jsii.String("USD")},
		},
		NotificationsWithSubscribers: []any{
			notify("ACTUAL", BudgetActualPercent),       // money already spent
			notify("FORECASTED", BudgetForecastPercent), // on course to overspend
		},
	})

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
	for _, id := range []string{"cpu-high", "disk-root-high", "disk-data-high", "status-check-failed", "api-5xx-rate", "backup-failed", "logs-silent"} {
		alarms = append(alarms, s.Alarms[id])
	}
	dash.AddWidgets(awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{Title: jsii.String("Alarms"), Width: jsii.Number(24), Alarms: &alarms}))
	return s
}
