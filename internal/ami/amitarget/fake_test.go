package amitarget

// No local emulator implements EC2 images (kumo has none): a fake of the calls ami uses.

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

type fakeImages struct{ deleted int }

func (f *fakeImages) DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return &ec2.DescribeImagesOutput{Images: []ec2types.Image{
		{ImageId: aws.String("ami-old"), CreationDate: aws.String("2026-11-01T00:00:00Z")},
		{ImageId: aws.String("ami-live"), CreationDate: aws.String("2026-11-02T00:00:00Z")},
	}}, nil
}

func (f *fakeImages) DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return &ec2.DescribeInstancesOutput{}, nil
}

func (f *fakeImages) DeregisterImage(context.Context, *ec2.DeregisterImageInput, ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	f.deleted++
	return &ec2.DeregisterImageOutput{}, nil
}

func (f *fakeImages) GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Value: aws.String("ami-live")}}, nil
}
