package main

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2authorizers"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfront"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudfrontorigins"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53targets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawsec2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/shtetl/zmanim-ops/internal/config"
)

//go:embed assets/directory-index.js
var directoryIndexJS string

// EdgeStackProps configure CloudFront and the HTTP API (stories 7.6, 7.7) and the alias
// records (7.8.3), all rendered from config.Env.Edge and config.Env.API.
type EdgeStackProps struct {
	awscdk.StackProps
	Env     *config.Env
	Network *NetworkStack
	Compute *ComputeStack
	// Certificate (us-east-1) and Zone come from the Dns stack.
	Certificate awscertificatemanager.ICertificate
	Zone        awsroute53.IHostedZone
}

// EdgeStack holds the HTTP API, the distribution and the records pointing at it.
type EdgeStack struct {
	awscdk.Stack
	Api          awsapigatewayv2.HttpApi
	Stage        awsapigatewayv2.HttpStage
	AccessLogs   awslogs.LogGroup
	Distribution awscloudfront.Distribution
	// CachePolicies by configured name.
	CachePolicies map[string]awscloudfront.CachePolicy
}

// NewEdgeStack renders the edge/API description.
func NewEdgeStack(scope constructs.Construct, id string, props *EdgeStackProps) *EdgeStack {
	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	e := props.Env
	s := &EdgeStack{Stack: stack, CachePolicies: map[string]awscloudfront.CachePolicy{}}

	// --- API Gateway HTTP API (7.7.1) ---
	cors := e.API.CORS
	methods := make([]awsapigatewayv2.CorsHttpMethod, 0, len(cors.AllowMethods))
	for _, m := range cors.AllowMethods {
		methods = append(methods, awsapigatewayv2.CorsHttpMethod(strings.ToUpper(m)))
	}
	api := awsapigatewayv2.NewHttpApi(stack, jsii.String("HttpApi"), &awsapigatewayv2.HttpApiProps{
		ApiName:            jsii.String("zmanim-" + e.Name),
		Description:        jsii.String("zmanim API: JWT on protected routes, private integration to the box"),
		CreateDefaultStage: jsii.Bool(false),
		CorsPreflight: &awsapigatewayv2.CorsPreflightOptions{
			AllowOrigins: jsii.Strings(cors.AllowOrigins...),
			AllowMethods: &methods,
			AllowHeaders: jsii.Strings(cors.AllowHeaders...),
			MaxAge:       awscdk.Duration_Seconds(jsii.Number(float64(cors.MaxAgeSeconds))),
		},
	})
	s.Api = api
	s.AccessLogs = awslogs.NewLogGroup(stack, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String(fmt.Sprintf("/zmanim/%s/api-access", e.Name)),
		Retention:     awslogs.RetentionDays_ONE_MONTH,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	stage := awsapigatewayv2.NewHttpStage(stack, jsii.String("DefaultStage"), &awsapigatewayv2.HttpStageProps{
		HttpApi:    api,
		StageName:  jsii.String("$default"),
		AutoDeploy: jsii.Bool(true),
		Throttle: &awsapigatewayv2.ThrottleSettings{ // 7.7.4
			RateLimit:  jsii.Number(e.API.Throttle.RateLimit),
			BurstLimit: jsii.Number(float64(e.API.Throttle.BurstLimit)),
		},
	})
	// 7.7.6: access logs in the configured format (set on the L1 stage: the L2 takes an interface).
	stage.Node().DefaultChild().(awsapigatewayv2.CfnStage).SetAccessLogSettings(&awsapigatewayv2.CfnStage_AccessLogSettingsProperty{
		DestinationArn: s.AccessLogs.LogGroupArn(),
		Format:         jsii.String(e.API.AccessLogFormat),
	})
	s.Stage = stage

	// 7.7.2 + trap 1: a private integration through a VPC link to the box registered in Cloud Map.
	// The origin-verify header is not set here but by CloudFront (an origin custom header on the
	// API origin, below) and passed through: a request sent to the execute-api endpoint directly
	// reaches the box without the secret and is refused before any work (issue 14 finding 4).
	link := awsapigatewayv2.NewVpcLink(stack, jsii.String("VpcLink"), &awsapigatewayv2.VpcLinkProps{
		Vpc:            props.Network.Vpc,
		Subnets:        &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		SecurityGroups: &[]interfacesawsec2.ISecurityGroupRef{props.Network.VpcLinkSG},
		VpcLinkName:    jsii.String("zmanim-" + e.Name),
	})
	secret := awscdk.NewCfnDynamicReference(awscdk.CfnDynamicReferenceService_SSM, jsii.String(e.SSM(config.ParamOriginVerify))).ToString()
	integration := awsapigatewayv2integrations.NewHttpServiceDiscoveryIntegration(jsii.String("Box"), props.Compute.BoxService, &awsapigatewayv2integrations.HttpServiceDiscoveryIntegrationProps{
		VpcLink: link,
	})

	// 7.7.3: the Clerk JWT authorizers.
	authorizers := map[string]awsapigatewayv2authorizers.HttpJwtAuthorizer{}
	names := make([]string, 0, len(e.API.Authorizers))
	for n := range e.API.Authorizers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := e.API.Authorizers[n]
		authorizers[n] = awsapigatewayv2authorizers.NewHttpJwtAuthorizer(jsii.String(n), jsii.String(a.Issuer), &awsapigatewayv2authorizers.HttpJwtAuthorizerProps{
			AuthorizerName: jsii.String(n),
			JwtAudience:    jsii.Strings(a.Audience...),
			IdentitySource: jsii.Strings(a.IdentitySource),
		})
	}
	for _, r := range e.API.Routes {
		method, path := r.Split()
		opts := &awsapigatewayv2.AddRoutesOptions{
			Path:        jsii.String(path),
			Methods:     &[]awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod(method)},
			Integration: integration,
		}
		if r.Authorizer != "" {
			opts.Authorizer = authorizers[r.Authorizer]
			if len(r.Scopes) > 0 {
				opts.AuthorizationScopes = jsii.Strings(r.Scopes...)
			}
		}
		api.AddRoutes(opts)
	}

	// --- CloudFront (7.6) ---
	shield := e.Edge.OriginShieldRegion
	apiDomain := awscdk.Fn_Select(jsii.Number(2), awscdk.Fn_Split(jsii.String("/"), api.ApiEndpoint(), nil))
	origins := map[string]awscloudfront.IOrigin{}
	for _, o := range e.Edge.Origins {
		switch o.Kind {
		case config.OriginAPI:
			headers := map[string]*string{}
			for k, v := range e.OriginCustomHeaders(o, *secret) {
				headers[k] = jsii.String(v)
			}
			origins[o.ID] = awscloudfrontorigins.NewHttpOrigin(apiDomain, &awscloudfrontorigins.HttpOriginProps{
				OriginId:            jsii.String(o.ID),
				CustomHeaders:       &headers,
				ProtocolPolicy:      awscloudfront.OriginProtocolPolicy_HTTPS_ONLY,
				OriginSslProtocols:  &[]awscloudfront.OriginSslPolicy{awscloudfront.OriginSslPolicy_TLS_V1_2},
				OriginShieldEnabled: jsii.Bool(shield != ""),
				OriginShieldRegion:  jsii.String(shield),
			})
		case config.OriginS3:
			// The bucket lives in the Storage stack, which grants this distribution read access;
			// here it is referenced by its configured name so the stacks do not depend on each other both ways.
			bucket := awss3.Bucket_FromBucketAttributes(stack, jsii.String("StaticBucket"), &awss3.BucketAttributes{
				BucketName: jsii.String(e.Buckets.Static),
				Region:     jsii.String(e.Region),
			})
			origins[o.ID] = awscloudfrontorigins.S3BucketOrigin_WithOriginAccessControl(bucket, &awscloudfrontorigins.S3BucketOriginWithOACProps{
				OriginId:            jsii.String(o.ID),
				OriginShieldEnabled: jsii.Bool(shield != ""),
				OriginShieldRegion:  jsii.String(shield),
				OriginAccessLevels:  &[]awscloudfront.AccessLevel{awscloudfront.AccessLevel_READ},
			})
		}
	}
	pnames := make([]string, 0, len(e.Edge.CachePolicies))
	for n := range e.Edge.CachePolicies {
		pnames = append(pnames, n)
	}
	sort.Strings(pnames)
	for _, n := range pnames {
		s.CachePolicies[n] = newCachePolicy(stack, e, n, e.Edge.CachePolicies[n])
	}
	var dirIndex awscloudfront.Function
	behavior := func(b config.Behavior) *awscloudfront.AddBehaviorOptions {
		am, _ := allowedMethods(b.AllowedMethods) // checked by Validate
		bo := &awscloudfront.AddBehaviorOptions{
			CachePolicy:          s.CachePolicies[b.CachePolicy],
			AllowedMethods:       am,
			ViewerProtocolPolicy: viewerProtocolPolicy(e.Edge.ViewerProtocolPolicy),
			Compress:             jsii.Bool(e.Edge.CachePolicies[b.CachePolicy].Compress),
		}
		if b.ForwardAllViewerHeaders {
			// Authorization and the other viewer headers reach the origin but are not in the cache
			// key; config.Validate allows this only with a policy that never caches (trap 2).
			bo.OriginRequestPolicy = awscloudfront.OriginRequestPolicy_ALL_VIEWER_EXCEPT_HOST_HEADER()
		}
		if b.ViewerRequestFunction == config.FunctionDirectoryIndex {
			if dirIndex == nil {
				dirIndex = awscloudfront.NewFunction(stack, jsii.String("DirectoryIndex"), &awscloudfront.FunctionProps{
					FunctionName: jsii.String("zmanim-" + e.Name + "-directory-index"),
					Comment:      jsii.String("/docs/ -> /docs/index.html (Next.js static export)"),
					Runtime:      awscloudfront.FunctionRuntime_JS_2_0(),
					Code:         awscloudfront.FunctionCode_FromInline(jsii.String(directoryIndexJS)),
				})
			}
			bo.FunctionAssociations = &[]*awscloudfront.FunctionAssociation{{
				Function:  dirIndex,
				EventType: awscloudfront.FunctionEventType_VIEWER_REQUEST,
			}}
		}
		return bo
	}
	var def config.Behavior
	for _, b := range e.Edge.Behaviors {
		if b.PathPattern == "*" {
			def = b
		}
	}
	d := behavior(def)
	dist := awscloudfront.NewDistribution(stack, jsii.String("Distribution"), &awscloudfront.DistributionProps{
		Comment: jsii.String("zmanim " + e.Name),
		DefaultBehavior: &awscloudfront.BehaviorOptions{
			Origin: origins[def.Origin], CachePolicy: d.CachePolicy, AllowedMethods: d.AllowedMethods,
			ViewerProtocolPolicy: d.ViewerProtocolPolicy, Compress: d.Compress, OriginRequestPolicy: d.OriginRequestPolicy,
			FunctionAssociations: d.FunctionAssociations,
		},
		DefaultRootObject:      jsii.String(e.Edge.DefaultRootObject),
		DomainNames:            jsii.Strings(e.Domain), // 7.6.6
		Certificate:            props.Certificate,
		MinimumProtocolVersion: awscloudfront.SecurityPolicyProtocol_TLS_V1_2_2021,
		HttpVersion:            awscloudfront.HttpVersion_HTTP2_AND_3,
		PriceClass:             awscloudfront.PriceClass(strings.Replace(strings.ToUpper(e.Edge.PriceClass), "PRICECLASS", "PRICE_CLASS", 1)),
	})
	// AddBehavior appends, so the cache behaviors keep the configured precedence (a Go map
	// handed to AdditionalBehaviors would not).
	for _, b := range e.Edge.Behaviors {
		if b.PathPattern != "*" {
			dist.AddBehavior(jsii.String(b.PathPattern), origins[b.Origin], behavior(b))
		}
	}
	s.Distribution = dist
	// The static bucket's policy lives in the Storage stack and names this distribution.
	awscdk.Validations_Of(dist).Acknowledge(&awscdk.Acknowledgment{
		Id:     jsii.String("Annotation::@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac"),
		Reason: jsii.String("the Storage stack grants this distribution read access (TestStory7_5_2_BucketPolicies)"),
	})

	// 7.8.3: alias records for the domain.
	target := awsroute53.RecordTarget_FromAlias(awsroute53targets.NewCloudFrontTarget(dist))
	awsroute53.NewARecord(stack, jsii.String("AliasA"), &awsroute53.ARecordProps{Zone: props.Zone, RecordName: jsii.String(e.Domain), Target: target})
	awsroute53.NewAaaaRecord(stack, jsii.String("AliasAAAA"), &awsroute53.AaaaRecordProps{Zone: props.Zone, RecordName: jsii.String(e.Domain), Target: target})

	awscdk.NewCfnOutput(stack, jsii.String("DistributionId"), &awscdk.CfnOutputProps{Value: dist.DistributionId()})
	awscdk.NewCfnOutput(stack, jsii.String("DistributionDomain"), &awscdk.CfnOutputProps{Value: dist.DistributionDomainName()})
	awscdk.NewCfnOutput(stack, jsii.String("ApiEndpoint"), &awscdk.CfnOutputProps{Value: api.ApiEndpoint()})
	return s
}

func viewerProtocolPolicy(v string) awscloudfront.ViewerProtocolPolicy {
	return awscloudfront.ViewerProtocolPolicy(strings.ToUpper(strings.ReplaceAll(v, "-", "_")))
}

// newCachePolicy renders one configured cache policy as a custom CloudFront cache policy.
func newCachePolicy(scope constructs.Construct, e *config.Env, name string, c config.CachePolicy) awscloudfront.CachePolicy {
	headers := awscloudfront.CacheHeaderBehavior_None()
	if len(c.Headers) > 0 {
		headers = awscloudfront.CacheHeaderBehavior_AllowList(*jsii.Strings(c.Headers...)...)
	}
	qs := awscloudfront.CacheQueryStringBehavior_None()
	switch c.QueryStrings {
	case "all":
		qs = awscloudfront.CacheQueryStringBehavior_All()
	case "allow":
		qs = awscloudfront.CacheQueryStringBehavior_AllowList(*jsii.Strings(c.QueryAllow...)...)
	}
	cookies := awscloudfront.CacheCookieBehavior_None()
	if c.Cookies == "all" {
		cookies = awscloudfront.CacheCookieBehavior_All()
	}
	compress := c.Compress && c.Caches() // CloudFront rejects encodings in the key of a policy that never caches
	return awscloudfront.NewCachePolicy(scope, jsii.String("CachePolicy-"+name), &awscloudfront.CachePolicyProps{
		CachePolicyName:            jsii.String(fmt.Sprintf("zmanim-%s-%s", e.Name, name)),
		Comment:                    jsii.String(fmt.Sprintf("zmanim %s: %s (from internal/config)", e.Name, name)),
		MinTtl:                     awscdk.Duration_Seconds(jsii.Number(float64(c.MinTTL))),
		DefaultTtl:                 awscdk.Duration_Seconds(jsii.Number(float64(c.DefaultTTL))),
		MaxTtl:                     awscdk.Duration_Seconds(jsii.Number(float64(c.MaxTTL))),
		HeaderBehavior:             headers,
		QueryStringBehavior:        qs,
		CookieBehavior:             cookies,
		EnableAcceptEncodingGzip:   jsii.Bool(compress),
		EnableAcceptEncodingBrotli: jsii.Bool(compress),
	})
}
