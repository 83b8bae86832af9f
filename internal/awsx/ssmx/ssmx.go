// Package ssmx reads SSM Parameter Store secrets: the one definition of a decrypted
// SecureString read and of "the parameter does not exist". It is apart from awsx so that the
// box's own programs (zops-box's first boot) use it without linking awsx's other clients;
// awsx.Clients.Secret is built on it.
package ssmx

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/shtetl/zmanim-ops/internal/awsx/awserr"
)

// ErrParameterMissing means an SSM parameter does not exist.
var ErrParameterMissing = errors.New("ssm parameter missing")

// GetParameterAPI is the part of the SSM API a secret read needs.
type GetParameterAPI interface {
	// GetParameter reads one parameter; WithDecryption decrypts a SecureString.
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var _ GetParameterAPI = (*ssm.Client)(nil)

// ReadSecret reads the parameter full (its whole name), decrypted. A missing parameter is
// ErrParameterMissing naming it, followed by fix (how to create it where the caller runs).
// The value is never part of an error.
func ReadSecret(ctx context.Context, api GetParameterAPI, full, fix string) (string, error) {
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(full), WithDecryption: aws.Bool(true)})
	if err != nil {
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) || awserr.SSMNotFound(err) {
			return "", fmt.Errorf("%w: %s; %s", ErrParameterMissing, full, fix)
		}
		return "", fmt.Errorf("read ssm parameter %s: %w", full, err)
	}
	return aws.ToString(out.Parameter.Value), nil
}
