package main

import (
	"strings"
	"testing"
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
		{"backup-failed", BackupMetric, "LessThanThreshold", 1, 86400},
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
