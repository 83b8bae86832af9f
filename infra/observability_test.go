package main

import (
	"encoding/json"
	"os"

	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/shtetl/zmanim-ops/internal/boxspec"
)

func TestObservabilityAlarmsFromTheSpec(t *testing.T) {
	alarms := map[string]map[string]any{}
	for _, r := range res(PartObservability, "AWS::CloudWatch::Alarm") {
		p := props(r)
		alarms[strings.TrimPrefix(p["AlarmName"].(string), "zmanim-prod-")] = p
	}
	_, topic := one(t, PartObservability, "AWS::SNS::Topic")
	_ = topic
	tests := []struct {
		name, metric, op  string
		threshold, period float64
	}{
		{"cpu-high", "CPUUtilization", "GreaterThanThreshold", 80, 300},
		{"disk-root-high", "disk_used_percent", "GreaterThanThreshold", 80, 300},
		{"disk-data-high", "disk_used_percent", "GreaterThanThreshold", 80, 300},
		{"status-check-failed", "StatusCheckFailed", "GreaterThanThreshold", 0, 300},
		{"backup-failed", BackupMetric, "LessThanThreshold", 1, 3600},
		{"logs-silent", "IncomingLogEvents", "LessThanThreshold", 1, 3600},
		{"api-5xx-rate", "", "GreaterThanThreshold", 1, 300},
	}
	for _, tc := range tests {
		a, ok := alarms[tc.name]
		if !ok {
			t.Errorf("alarm %s missing", tc.name)
			continue
		}
		if a["ComparisonOperator"] != tc.op || js(a["Threshold"]) != js(tc.threshold) {
			t.Errorf("%s: %v %v", tc.name, a["ComparisonOperator"], a["Threshold"])
		}
		// A metric with a label renders as a one-entry Metrics list instead of MetricName.
		if all := js(a); tc.metric != "" && (!strings.Contains(all, `"MetricName":"`+tc.metric+`"`) || !strings.Contains(all, `"Period":`+js(tc.period))) {
			t.Errorf("%s: want metric %s period %v in %s", tc.name, tc.metric, tc.period, all)
		}
		if !strings.Contains(js(a["AlarmActions"]), "Alarms") {
			t.Errorf("%s: actions %v, want the SNS topic", tc.name, a["AlarmActions"])
		}
	}
	// API 5xx > 1% over 5 minutes: 5xx / Count from API Gateway.
	m := js(alarms["api-5xx-rate"]["Metrics"])
	for _, want := range []string{"100 * errors / requests", `"MetricName":"5xx"`, `"MetricName":"Count"`, `"Period":300`} {
		if !strings.Contains(m, want) {
			t.Errorf("api-5xx-rate lacks %s: %s", want, m)
		}
	}
	if !strings.Contains(js(alarms["disk-data-high"]), `{"Name":"path","Value":"/data"}`) {
		t.Errorf("disk-data-high dimensions %s", js(alarms["disk-data-high"]))
	}
	has(t, PartObservability, "AWS::SNS::Subscription", map[string]any{"Protocol": "email", "Endpoint": cfg.Notify.To})
}

func TestObservabilityDashboard(t *testing.T) {
	_, d := one(t, PartObservability, "AWS::CloudWatch::Dashboard")
	body := js(props(d)["DashboardBody"])
	for _, want := range []string{`p50`, `p95`, `p99`, "Cache hit ratio", "Errors by endpoint", "routeKey", "Instance utilization", "mem_used_percent", "CloudFront"} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
}

// The backup alarm is fed by zops-backup's metric and fires only when the schedule has had its
// chance: every hour of the interval plus the grace without a success (missing = failure).
func TestBackupAlarmFollowsTheSchedule(t *testing.T) {
	for _, r := range res(PartObservability, "AWS::CloudWatch::Alarm") {
		p := props(r)
		if p["AlarmName"] != "zmanim-prod-backup-failed" {
			continue
		}
		want := map[string]string{"Namespace": `"` + BackupNS + `"`, "MetricName": `"` + BackupMetric + `"`, "Statistic": `"Sum"`, "Period": "3600",
			"EvaluationPeriods": "26", "DatapointsToAlarm": "26", "TreatMissingData": `"breaching"`, "Dimensions": `[{"Name":"Env","Value":"prod"}]`}
		for k, v := range want {
			if js(p[k]) != v {
				t.Errorf("backup-failed %s = %s, want %s", k, js(p[k]), v)
			}
		}
		return
	}
	t.Fatal("no backup-failed alarm")
	if scheduleProblem("*-*-* 03:00:00 UTC") != "" || scheduleProblem("Mon *-*-* 03:00") == "" {
		t.Error("scheduleProblem")
	}
}

func TestBackupScheduleMustBeDaily(t *testing.T) {
	if scheduleProblem(cfg.Backup.Schedule) != "" || scheduleProblem("*-*-* 03:00") != "" {
		t.Errorf("daily schedules refused")
	}
	if msg := scheduleProblem("Mon *-*-* 03:00:00"); !strings.Contains(msg, "backup.schedule") {
		t.Errorf("a weekly schedule passed: %q", msg)
	}
}

// The budget: the configured monthly amount, actual and forecast notifications to the alarm
// topic, which lets AWS Budgets publish.
func TestBudgetWithActualAndForecast(t *testing.T) {
	_, b := one(t, PartObservability, "AWS::Budgets::Budget")
	p := props(b)
	bd := p["Budget"].(map[string]any)
	if bd["BudgetType"] != "COST" || bd["TimeUnit"] != "MONTHLY" || js(bd["BudgetLimit"]) != `{"Amount":`+js(cfg.Budget.MonthlyUSD)+`,"Unit":"USD"}` {
		t.Errorf("budget %s, want COST MONTHLY %v USD", js(bd), cfg.Budget.MonthlyUSD)
	}
	n := js(p["NotificationsWithSubscribers"])
	for _, want := range []string{`"NotificationType":"ACTUAL"`, `"NotificationType":"FORECASTED"`, `"SubscriptionType":"SNS"`, `"Ref":"Alarms`} {
		if !strings.Contains(n, want) {
			t.Errorf("budget notifications lack %s: %s", want, n)
		}
	}
	has(t, PartObservability, "AWS::SNS::TopicPolicy", map[string]any{"PolicyDocument": assertions.Match_ObjectLike(&map[string]any{
		"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{"Principal": map[string]any{"Service": "budgets.amazonaws.com"}, "Action": "sns:Publish"})}),
	})})
}

// The box's logs reach CloudWatch: the agent ships the file the image's journal export writes
// (packer/recipe/60-logs.sh exports the API's, PostgreSQL's and Redis's units) into the group
// the stack keeps, and an hour of silence alarms.
func TestBoxLogsReachCloudWatch(t *testing.T) {
	has(t, PartObservability, "AWS::Logs::LogGroup", map[string]any{"LogGroupName": BoxLogGroup("prod"), "RetentionInDays": 30})
	var agent map[string]any
	if err := json.Unmarshal([]byte(AgentConfig(cfg)), &agent); err != nil {
		t.Fatal(err)
	}
	files := js(agent["logs"])
	if !strings.Contains(files, `"log_group_name":"`+BoxLogGroup("prod")+`"`) || !strings.Contains(files, `"file_path":"`+boxspec.LogFile+`"`) {
		t.Errorf("agent logs %s", files)
	}
	recipe, err := os.ReadFile("../packer/recipe/60-logs.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"$ZB_SERVICES", "box.log", "journalctl --follow"} {
		if !strings.Contains(string(recipe), want) && !strings.Contains(string(recipe), strings.Trim(want, "$")) {
			t.Errorf("60-logs.sh lacks %s: the file the agent tails would not hold the services' logs", want)
		}
	}
	if !strings.Contains(js(agent["metrics"]), `"AutoScalingGroupName"`) {
		t.Errorf("agent metrics not aggregated by the group: %s", js(agent["metrics"]))
	}
}
