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
