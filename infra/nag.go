package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
)

// applyNag is filled in with the cdk-nag checks and suppressions.
func applyNag(app awscdk.App, s *Stacks) {}
