package ec2

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// BuilderID identifies artifacts of this builder.
const BuilderID = "zops.ec2"

// Artifact is a built image; its Id is region:ami-id, as the stock amazon builders report it.
type Artifact struct {
	Region    string
	ImageID   string
	StateData map[string]interface{}
	ec2       EC2API
}

func (*Artifact) BuilderId() string               { return BuilderID }
func (*Artifact) Files() []string                 { return nil }
func (a *Artifact) Id() string                    { return a.Region + ":" + a.ImageID }
func (a *Artifact) String() string                { return fmt.Sprintf("AMI %s in %s", a.ImageID, a.Region) }
func (a *Artifact) State(name string) interface{} { return a.StateData[name] }

// Destroy deregisters the image with its snapshots.
func (a *Artifact) Destroy() error {
	if a.ec2 == nil {
		return fmt.Errorf("destroy %s: no EC2 client", a.ImageID)
	}
	_, err := a.ec2.DeregisterImage(context.Background(), &ec2.DeregisterImageInput{ImageId: aws.String(a.ImageID), DeleteAssociatedSnapshots: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("deregister %s: %w", a.ImageID, err)
	}
	return nil
}
