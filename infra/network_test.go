package main

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

func TestStory7_3_1_VpcInRegionWithOnePublicSubnet(t *testing.T) {
	has(t, PartNetwork, "AWS::EC2::VPC", map[string]any{"CidrBlock": VpcCIDR})
	count(t, PartNetwork, "AWS::EC2::Subnet", 1)
	has(t, PartNetwork, "AWS::EC2::Subnet", map[string]any{"AvailabilityZone": cfg.Region + "a", "MapPublicIpOnLaunch": false})
	has(t, PartNetwork, "AWS::EC2::Route", map[string]any{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": assertions.Match_AnyValue()})
	if r := *stacks.Network.Region(); r != "eu-west-1" {
		t.Errorf("network in %s", r)
	}
}

func TestStory7_3_2_InternetGatewayAttached(t *testing.T) {
	count(t, PartNetwork, "AWS::EC2::InternetGateway", 1)
	count(t, PartNetwork, "AWS::EC2::VPCGatewayAttachment", 1)
}

func TestStory7_3_3_S3GatewayEndpoint(t *testing.T) {
	has(t, PartNetwork, "AWS::EC2::VPCEndpoint", map[string]any{
		"VpcEndpointType": "Gateway",
		"ServiceName":     assertions.Match_AnyValue(),
		"RouteTableIds":   assertions.Match_AnyValue(),
	})
	_, ep := one(t, PartNetwork, "AWS::EC2::VPCEndpoint")
	if s := js(props(ep)["ServiceName"]); !strings.Contains(s, ".s3") {
		t.Errorf("endpoint service %s", s)
	}
}

// 7.3.4 with trap 1: the spec's "443 from CloudFront" would admit nothing useful (CloudFront
// reaches API Gateway, not the box). The box admits the API port only from the VPC link's
// security group and SSH only from the admin range; nothing is open to the internet.
func TestStory7_3_4_SecurityGroups_Trap1NoPathAroundTheEdge(t *testing.T) {
	sgs := res(PartNetwork, "AWS::EC2::SecurityGroup")
	var boxID, linkID string
	for id := range sgs {
		switch {
		case strings.HasPrefix(id, "BoxSG"):
			boxID = id
		case strings.HasPrefix(id, "VpcLinkSG"):
			linkID = id
		}
	}
	if boxID == "" || linkID == "" {
		t.Fatalf("security groups %v", sgs)
	}
	// Inline ingress rules (CIDR) and separate ones (SG to SG).
	type rule struct{ port, from string }
	var ingress []rule
	for _, r := range asList(props(sgs[boxID])["SecurityGroupIngress"]) {
		m := r.(map[string]any)
		ingress = append(ingress, rule{js(m["FromPort"]) + "-" + js(m["ToPort"]), js(m["CidrIp"])})
	}
	for _, r := range res(PartNetwork, "AWS::EC2::SecurityGroupIngress") {
		p := props(r)
		if strings.Contains(js(p["GroupId"]), boxID) {
			ingress = append(ingress, rule{js(p["FromPort"]) + "-" + js(p["ToPort"]), js(p["SourceSecurityGroupId"])})
		}
	}
	want := map[string]string{
		"22-22":     `"` + cfg.Instance.AdminCIDR + `"`,
		"8080-8080": linkID,
	}
	if len(ingress) != len(want) {
		t.Fatalf("box ingress %+v, want exactly %v", ingress, want)
	}
	for _, r := range ingress {
		if !strings.Contains(r.from, strings.Trim(want[r.port], `"`)) {
			t.Errorf("box ingress %s from %s, want from %s", r.port, r.from, want[r.port])
		}
	}
	// Nothing anywhere admits the internet.
	for part := range raw {
		if s := js(raw[part]["Resources"]); strings.Contains(s, `"CidrIp":"0.0.0.0/0"`) && strings.Contains(s, "SecurityGroupIngress") {
			for id, r := range res(part, "AWS::EC2::SecurityGroup") {
				for _, in := range asList(props(r)["SecurityGroupIngress"]) {
					if in.(map[string]any)["CidrIp"] == "0.0.0.0/0" {
						t.Errorf("%s/%s admits 0.0.0.0/0: %v", part, id, in)
					}
				}
			}
		}
	}
	// The VPC link may only reach the box's API port.
	link := props(sgs[linkID])
	egress := asList(link["SecurityGroupEgress"])
	for _, e := range egress {
		if m := e.(map[string]any); m["CidrIp"] == "0.0.0.0/0" && m["IpProtocol"] == "-1" {
			t.Errorf("VPC link SG allows all outbound: %v", m)
		}
	}
	has(t, PartNetwork, "AWS::EC2::SecurityGroupEgress", map[string]any{"FromPort": 8080, "ToPort": 8080, "IpProtocol": "tcp"})
}

func TestStory7_3_5_NoNatGateway(t *testing.T) {
	for part := range raw {
		count(t, part, "AWS::EC2::NatGateway", 0)
	}
	count(t, PartNetwork, "AWS::EC2::EIP", 0)
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

var _ = jsii.String
