// Package ec2x holds the toolkit's EC2 calls. It is apart from awsx because the EC2 SDK is
// large (a fresh machine spends about two minutes compiling it): the binaries that run on the
// box (zops-box, zops-backup) link awsx but never this package.
package ec2x

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/shtetl/zmanim-ops/internal/awsx"
)

// New returns the EC2 client of c's environment (kumo's endpoint on the twin).
func New(c *awsx.Clients) *ec2.Client {
	return ec2.NewFromConfig(c.Config, func(o *ec2.Options) {
		if ep := c.Endpoints(); ep != nil {
			o.BaseEndpoint = aws.String(ep.AWS)
		}
	})
}

// DescribeAPI is the part of the EC2 API an instance lookup needs.
type DescribeAPI interface {
	// DescribeInstances lists instances matching the filters.
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

var _ DescribeAPI = (*ec2.Client)(nil)

// ErrNotOneInstance means a tag lookup found no running instance, or several.
var ErrNotOneInstance = errors.New("not exactly one running instance")

// RunningByName returns the id of the one running instance tagged Name=name.
func RunningByName(ctx context.Context, api DescribeAPI, name string) (string, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:Name"), Values: []string{name}},
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
	}})
	if err != nil {
		return "", fmt.Errorf("find the instance by tag Name=%s: %w", name, err)
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("%w: %d running instances tagged Name=%s (%s)", ErrNotOneInstance, len(ids), name, strings.Join(ids, ", "))
	}
	return ids[0], nil
}
