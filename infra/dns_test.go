package main

import (
	"strings"
	"testing"
)

func TestStory7_8_1_and_7_8_2_CertificateWithDnsValidation(t *testing.T) {
	zoneID, _ := one(t, PartDNS, "AWS::Route53::HostedZone")
	has(t, PartDNS, "AWS::CertificateManager::Certificate", map[string]any{
		"DomainName":              cfg.Domain,
		"ValidationMethod":        "DNS",
		"DomainValidationOptions": []any{map[string]any{"DomainName": cfg.Domain, "HostedZoneId": map[string]any{"Ref": zoneID}}},
	})
	if r := *stacks.Dns.Region(); r != "us-east-1" {
		t.Errorf("certificate stack in %s: CloudFront needs us-east-1", r)
	}
	has(t, PartDNS, "AWS::Route53::HostedZone", map[string]any{"Name": cfg.HostedZone + "."})
}

func TestStory7_8_4_HealthCheckOnHealth(t *testing.T) {
	_, hc := one(t, PartDNS, "AWS::Route53::HealthCheck")
	c := props(hc)["HealthCheckConfig"].(map[string]any)
	if c["Type"] != "HTTPS" || c["FullyQualifiedDomainName"] != cfg.Domain || c["ResourcePath"] != "/health" || js(c["Port"]) != "443" {
		t.Errorf("health check %v", js(c))
	}
	if len(asList(c["Regions"])) < 3 {
		t.Errorf("regions %v", c["Regions"])
	}
	// /health is never cached at the edge, so the check reaches the box.
	if b, _ := cfg.Edge.Match("/health"); cfg.Edge.CachePolicies[b.CachePolicy].Caches() || !strings.HasPrefix(b.PathPattern, "/health") {
		t.Errorf("/health served by %+v", b)
	}
}

// The health check's alarm lives where its metric does (us-east-1) and notifies a topic there
// with the configured address.
func TestHealthCheckAlarmInUsEast1(t *testing.T) {
	if r := *stacks.Dns.Region(); r != "us-east-1" {
		t.Fatalf("dns stack in %s", r)
	}
	hc, _ := one(t, PartDNS, "AWS::Route53::HealthCheck")
	has(t, PartDNS, "AWS::CloudWatch::Alarm", map[string]any{
		"Namespace": "AWS/Route53", "MetricName": "HealthCheckStatus", "Statistic": "Minimum", "Period": 60,
		"Threshold": 1, "ComparisonOperator": "LessThanThreshold", "EvaluationPeriods": 3, "TreatMissingData": "breaching",
		"Dimensions": []any{map[string]any{"Name": "HealthCheckId", "Value": map[string]any{"Fn::GetAtt": []any{hc, "HealthCheckId"}}}},
	})
	has(t, PartDNS, "AWS::SNS::Subscription", map[string]any{"Protocol": "email", "Endpoint": cfg.Notify.To})
	_, a := one(t, PartDNS, "AWS::CloudWatch::Alarm")
	if !strings.Contains(js(props(a)["AlarmActions"]), "Alarms") {
		t.Errorf("health alarm actions %s", js(props(a)["AlarmActions"]))
	}
}
