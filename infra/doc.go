// Command infra is the CDK app (Go, aws-cdk-go v2) that describes production: one file per
// stack, each with exported XStackProps and a NewXStack constructor, every value taken from the
// shared configuration (internal/config, environment "prod"). `go tool mage infra:synth` runs it;
// the tests synthesize it once (TestMain) and assert every acceptance criterion a template can show.
//
// Stacks and their order (arrows are references):
//
//	Dns (us-east-1: zone, CloudFront certificate, health check)
//	Network -> Compute -> Edge (HTTP API + CloudFront + alias records) -> Storage
//	Observability (alarms, dashboard), GithubOidc (deploy role)
//
// Storage comes after Edge because the static bucket policy names the distribution (origin access
// control), while Edge reaches the bucket by its configured name.
package main
