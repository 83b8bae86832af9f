package ec2

import (
	"context"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/shtetl/zmanim-ops/internal/ami"
)

// EC2API is the part of EC2 the builder calls.
type EC2API interface {
	ami.EC2API // DescribeImages, DescribeInstances, DeregisterImage
	// RunInstances launches the build instance.
	RunInstances(ctx context.Context, in *ec2.RunInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	// StopInstances stops it before imaging, so the file systems are consistent.
	StopInstances(ctx context.Context, in *ec2.StopInstancesInput, optFns ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error)
	// TerminateInstances removes it, whatever happened.
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	// CreateImage makes the AMI (with tags on the image and its snapshots).
	CreateImage(ctx context.Context, in *ec2.CreateImageInput, optFns ...func(*ec2.Options)) (*ec2.CreateImageOutput, error)
}

// SSMAPI is the part of SSM the builder calls.
type SSMAPI interface {
	ami.ParameterAPI // GetParameter: the base image parameter, read-back of the published one
	// PutParameter publishes the image id (DataType aws:ec2:image, validated asynchronously).
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	// DescribeInstanceInformation tells when the instance's agent is online.
	DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
	// SendCommand runs a shell script on the instance (AWS-RunShellScript).
	SendCommand(ctx context.Context, in *ssm.SendCommandInput, optFns ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	// GetCommandInvocation reports a command's status and exit code (and at most 24,000
	// characters of stdout: the full output goes through S3).
	GetCommandInvocation(ctx context.Context, in *ssm.GetCommandInvocationInput, optFns ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
}

// S3API stages uploads and collects output.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// Presigner makes the URLs the instance fetches uploads from and puts output to, so its role
// needs no S3 permission at all.
type Presigner interface {
	PresignGetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
	PresignPutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
}

var (
	_ EC2API    = (*ec2.Client)(nil)
	_ SSMAPI    = (*ssm.Client)(nil)
	_ S3API     = (*s3.Client)(nil)
	_ Presigner = (*s3.PresignClient)(nil)
)

// Clients are the AWS clients of one build.
type Clients struct {
	EC2     EC2API
	SSM     SSMAPI
	S3      S3API
	Presign Presigner
}
