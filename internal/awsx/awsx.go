// Package awsx is the one home of the toolkit's AWS behaviour. It builds every AWS client from
// the configuration, pointed either at real AWS (the default credential chain) or at the local
// twin's endpoints (S3 at versitygw, path-style; SSM/SES/STS at kumo; CloudFront at the twin's
// edge) with the twin's credentials, so callers never branch on the environment. It also holds
// CloudFront invalidation and distribution lookup (cloudfront.go), SSM Run Command
// send-and-wait (runcommand.go), twin credentials and explicit S3 endpoints (s3.go) and SSM
// secrets (below, on ssmx). Sub-packages keep what the box's own programs need light:
// awserr classifies AWS errors, ssmx reads secrets, and ec2x holds the EC2 SDK, which
// zops-box and zops-backup never link.
// It reads no environment variable: the targets' option readers pass what they read.
package awsx

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/shtetl/zmanim-ops/internal/awsx/ssmx"
	"github.com/shtetl/zmanim-ops/internal/config"
)

// Clients are the AWS clients of one environment.
type Clients struct {
	Env        *config.Env
	Config     aws.Config
	S3         *s3.Client
	SSM        *ssm.Client
	SES        *sesv2.Client
	CloudFront *cloudfront.Client
	STS        *sts.Client
	ep         *Endpoints // the twin's endpoints; nil in AWS
}

// Endpoints returns the twin endpoints the clients talk to, nil in AWS (for sub-packages
// such as ec2x that build further clients).
func (c *Clients) Endpoints() *Endpoints { return c.ep }

// Endpoints of the twin, derived from the configuration.
type Endpoints struct {
	S3, AWS, Edge string
}

// TwinEndpoints returns the loopback URLs of the twin's AWS stand-ins.
func TwinEndpoints(env *config.Env) Endpoints {
	return Endpoints{
		S3:   env.URL(env.Twin.Ports.S3),
		AWS:  env.URL(env.Twin.Ports.AWS),
		Edge: env.URL(env.Twin.Ports.Control),
	}
}

// TwinDistributionID is the distribution id the twin's edge reports.
const TwinDistributionID = config.TwinDistributionID

// New returns the clients for env.
func New(ctx context.Context, env *config.Env) (*Clients, error) {
	if env.IsTwin() {
		ep, err := TwinS3(env)
		if err != nil {
			return nil, err
		}
		return NewTwin(ctx, env, TwinEndpoints(env), ep.AccessKey, ep.SecretKey)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(env.Region))
	if err != nil {
		return nil, fmt.Errorf("aws config for %s: %w", env.Name, err)
	}
	return clients(env, cfg, nil), nil
}

// NewTwin returns clients pointed at explicit twin endpoints with static credentials.
func NewTwin(ctx context.Context, env *config.Env, ep Endpoints, accessKey, secretKey string) (*Clients, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion(env.Region),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")),
		// The twin never talks to IMDS or shared config files.
		awsconfig.WithEC2IMDSClientEnableState(1),
		awsconfig.WithSharedConfigFiles([]string{}),
		awsconfig.WithSharedCredentialsFiles([]string{}),
	)
	if err != nil {
		return nil, fmt.Errorf("aws config for the twin: %w", err)
	}
	return clients(env, cfg, &ep), nil
}

func clients(env *config.Env, cfg aws.Config, ep *Endpoints) *Clients {
	c := &Clients{Env: env, Config: cfg}
	c.S3 = s3.NewFromConfig(cfg, func(o *s3.Options) {
		if ep != nil {
			o.BaseEndpoint = aws.String(ep.S3)
			o.UsePathStyle = true
			// versitygw verifies checksums but the twin has no need for the trailer form.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	c.SSM = ssm.NewFromConfig(cfg, func(o *ssm.Options) {
		if ep != nil {
			o.BaseEndpoint = aws.String(ep.AWS)
		}
	})
	c.SES = sesv2.NewFromConfig(cfg, func(o *sesv2.Options) {
		if ep != nil {
			o.BaseEndpoint = aws.String(ep.AWS)
		}
	})
	c.STS = sts.NewFromConfig(cfg, func(o *sts.Options) {
		if ep != nil {
			o.BaseEndpoint = aws.String(ep.AWS)
		}
	})
	c.ep = ep
	c.CloudFront = cloudfront.NewFromConfig(cfg, func(o *cloudfront.Options) {
		if ep != nil {
			o.BaseEndpoint = aws.String(ep.Edge)
		}
	})
	return c
}

// ErrParameterMissing means an SSM parameter does not exist (ssmx's, for errors.Is).
var ErrParameterMissing = ssmx.ErrParameterMissing

// Secret reads a SecureString parameter under the environment's prefix, decrypted. The value
// must never be printed; errors name the parameter, not the value.
func (c *Clients) Secret(ctx context.Context, name string) (string, error) {
	return ReadSecret(ctx, c.SSM, c.Env.SSM(name))
}

// ReadSecret reads the SecureString parameter full (its whole name), decrypted.
func ReadSecret(ctx context.Context, api ssmx.GetParameterAPI, full string) (string, error) {
	return ssmx.ReadSecret(ctx, api, full, fmt.Sprintf("create it with `aws ssm put-parameter --type SecureString --name %s` (the twin creates its own on twin:up)", full))
}

// SecretFromDefaultChain reads a SecureString parameter with the default credential chain
// (a regional load runner reading its bearer token with its instance role).
func SecretFromDefaultChain(ctx context.Context, full string) (string, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return "", fmt.Errorf("load AWS configuration: %w", err)
	}
	return ReadSecret(ctx, ssm.NewFromConfig(cfg), full)
}

// PutSecret writes a SecureString parameter under the environment's prefix.
func (c *Clients) PutSecret(ctx context.Context, name, value string) error {
	full := c.Env.SSM(name)
	_, err := c.SSM.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(full), Value: aws.String(value), Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("write ssm parameter %s: %w", full, err)
	}
	return nil
}

// PutString writes a plain String parameter under the environment's prefix.
func (c *Clients) PutString(ctx context.Context, name, value string) error {
	full := c.Env.SSM(name)
	_, err := c.SSM.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(full), Value: aws.String(value), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("write ssm parameter %s: %w", full, err)
	}
	return nil
}
