package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// NetworkStackProps configure the VPC (story 7.3).
type NetworkStackProps struct {
	awscdk.StackProps
	Env *config.Env
	// AvailabilityZone of the single public subnet (the spec: eu-west-1a).
	AvailabilityZone string
}

// NetworkStack is the VPC with one public subnet, an internet gateway, the free S3 gateway
// endpoint and no NAT gateway; and the two security groups of the origin path.
type NetworkStack struct {
	awscdk.Stack
	Vpc        awsec2.Vpc
	S3Endpoint awsec2.GatewayVpcEndpoint
	// BoxSG guards the instance: SSH from the admin range, the API port only from VpcLinkSG.
	BoxSG awsec2.SecurityGroup
	// VpcLinkSG is worn by the API Gateway VPC link's network interfaces.
	VpcLinkSG awsec2.SecurityGroup
}

// NewNetworkStack builds the network.
//
// Origin path (DESIGN.md trap 1). The spec opens 443 to CloudFront's prefix list, but CloudFront
// never talks to the box: it talks to API Gateway, and an HTTP API integration to the Elastic IP
// would come from API Gateway's public addresses, for which there is no managed prefix list. So
// the choice is 8080 open to the internet (guarded only by the origin-verify header, sent in clear
// over HTTP) or a private integration. We take the private one: an HTTP API VPC link (no charge)
// whose interfaces sit in the public subnet with VpcLinkSG, resolving the box through a Cloud Map
// HTTP namespace (cents a month, no load balancer). The box admits the API port only from
// VpcLinkSG, nothing on 443, SSH only from the admin range; CloudFront adds the origin-verify
// header (the gateway passes it through) and the box checks it, so neither the gateway's own
// endpoint nor anything inside the VPC gets around the edge.
func NewNetworkStack(scope constructs.Construct, id string, props *NetworkStackProps) *NetworkStack {
	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	e := props.Env

	vpc := awsec2.NewVpc(stack, jsii.String("Vpc"), &awsec2.VpcProps{
		IpAddresses:        awsec2.IpAddresses_Cidr(jsii.String(VpcCIDR)),
		AvailabilityZones:  jsii.Strings(props.AvailabilityZone),
		NatGateways:        jsii.Number(0), // the AMI is pre-baked: no NAT gateway (7.3.5)
		EnableDnsHostnames: jsii.Bool(true),
		EnableDnsSupport:   jsii.Bool(true),
		// Restricting the default SG needs a custom-resource Lambda; nothing uses the default SG.
		RestrictDefaultSecurityGroup: jsii.Bool(false),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{{
			Name:                jsii.String("public"),
			SubnetType:          awsec2.SubnetType_PUBLIC,
			CidrMask:            jsii.Number(24),
			MapPublicIpOnLaunch: jsii.Bool(false), // the box gets the Elastic IP instead
		}},
	})
	endpoint := vpc.AddGatewayEndpoint(jsii.String("S3"), &awsec2.GatewayVpcEndpointOptions{
		Service: awsec2.GatewayVpcEndpointAwsService_S3(),
	})

	linkSG := awsec2.NewSecurityGroup(stack, jsii.String("VpcLinkSG"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      jsii.String("API Gateway VPC link interfaces: may reach only the box API port"),
		AllowAllOutbound: jsii.Bool(false),
	})
	boxSG := awsec2.NewSecurityGroup(stack, jsii.String("BoxSG"), &awsec2.SecurityGroupProps{
		Vpc:              vpc,
		Description:      jsii.String("zmanim box: API port from the VPC link only, SSH from the admin range"),
		AllowAllOutbound: jsii.Bool(true), // the spec: egress all (S3 goes through the gateway endpoint)
	})
	apiPort := awsec2.Port_Tcp(jsii.Number(float64(e.Instance.Port)))
	boxSG.AddIngressRule(linkSG, apiPort, jsii.String("API from the API Gateway VPC link only"), jsii.Bool(false))
	linkSG.AddEgressRule(boxSG, apiPort, jsii.String("to the box API port"), jsii.Bool(false))
	boxSG.AddIngressRule(awsec2.Peer_Ipv4(jsii.String(e.Instance.AdminCIDR)), awsec2.Port_Tcp(jsii.Number(22)), jsii.String("SSH from the admin range"), jsii.Bool(false))

	awscdk.NewCfnOutput(stack, jsii.String("VpcId"), &awscdk.CfnOutputProps{Value: vpc.VpcId()})
	return &NetworkStack{Stack: stack, Vpc: vpc, S3Endpoint: endpoint, BoxSG: boxSG, VpcLinkSG: linkSG}
}

// VpcCIDR is the spec's address range.
const VpcCIDR = "10.0.0.0/16"
