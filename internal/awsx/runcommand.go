package awsx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/shtetl/zmanim-ops/internal/awsx/awserr"
)

// SSMCommandAPI is the part of the SSM API Run Command needs.
type SSMCommandAPI interface {
	// SendCommand starts a document on instances and returns the command's id.
	SendCommand(ctx context.Context, in *ssm.SendCommandInput, optFns ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	// GetCommandInvocation reports one instance's status and (truncated) output; right
	// after SendCommand it may answer InvocationDoesNotExist.
	GetCommandInvocation(ctx context.Context, in *ssm.GetCommandInvocationInput, optFns ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
}

// S3GetAPI reads an object (the whole output SSM wrote to S3).
type S3GetAPI interface {
	// GetObject returns the object's body.
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var (
	_ SSMCommandAPI = (*ssm.Client)(nil)
	_ S3GetAPI      = (*s3.Client)(nil)
)

// ErrCommandFailed means a command ran (or timed out) and did not succeed; the Invocation
// returned with it holds its output.
var ErrCommandFailed = errors.New("remote command failed")

// InlineOutputLimit is how much stdout GetCommandInvocation returns; the rest is cut off.
// (stderr is cut at 8,000 characters.)
const InlineOutputLimit = 24000

// RunCommand runs shell commands on one instance with SSM Run Command (the
// AWS-RunShellScript document) and waits for them: the one definition of send-and-wait,
// used by the production release deploy and the regional load runners.
type RunCommand struct {
	SSM SSMCommandAPI
	// OutputBucket, when set, has SSM also write the whole output to
	// s3://OutputBucket/OutputPrefix<command>/<instance>/awsrunShellScript/0.awsrunShellScript/
	// (the instance's role must be allowed to write there); an output longer than
	// InlineOutputLimit is then read back from there with S3.
	OutputBucket string
	OutputPrefix string
	S3           S3GetAPI
	Poll         time.Duration // between status checks (default 2s)
}

// Command is one Run Command invocation.
type Command struct {
	InstanceID string
	Commands   []string // the script, one line each
	Comment    string   // shown in the console (cut to 100 characters)
	// Timeout is the script's execution timeout (default 5m, at least 30s).
	Timeout time.Duration
	// Delivery is how long the command may wait for the instance's agent to pick it up
	// (SendCommand's TimeoutSeconds; default Timeout).
	Delivery time.Duration
}

// Invocation is a finished command on one instance.
type Invocation struct {
	CommandID    string
	InstanceID   string
	Status       string // Success, Failed, TimedOut, Cancelled, ...
	ResponseCode int32
	Stdout       string
	Stderr       string
}

// Sent is called once the command is accepted (for progress output); it may be nil.
type Sent func(commandID string)

// Run sends c and waits until it finishes. A command that finished without Success is
// ErrCommandFailed (wrapped) with the Invocation filled in; API failures are other errors.
func (r *RunCommand) Run(ctx context.Context, c Command, sent Sent) (Invocation, error) {
	inv := Invocation{InstanceID: c.InstanceID}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	timeout = max(timeout, 30*time.Second)
	delivery := c.Delivery
	if delivery <= 0 {
		delivery = timeout
	}
	delivery = max(delivery, 30*time.Second)
	in := &ssm.SendCommandInput{
		DocumentName:   aws.String("AWS-RunShellScript"),
		InstanceIds:    []string{c.InstanceID},
		Comment:        aws.String(trunc(c.Comment, 100)),
		TimeoutSeconds: aws.Int32(int32(delivery / time.Second)),
		Parameters: map[string][]string{
			"commands":         c.Commands,
			"executionTimeout": {fmt.Sprint(int(timeout / time.Second))},
		},
	}
	if r.OutputBucket != "" {
		in.OutputS3BucketName = aws.String(r.OutputBucket)
		if r.OutputPrefix != "" {
			in.OutputS3KeyPrefix = aws.String(strings.TrimSuffix(r.OutputPrefix, "/"))
		}
	}
	out, err := r.SSM.SendCommand(ctx, in)
	if err != nil {
		return inv, fmt.Errorf("ssm send-command to %s: %w", c.InstanceID, err)
	}
	inv.CommandID = aws.ToString(out.Command.CommandId)
	if sent != nil {
		sent(inv.CommandID)
	}
	poll := r.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	// SSM ends the command itself after at most the delivery plus the execution timeout;
	// the extra minute only guards against a status that never settles.
	deadline := time.Now().Add(delivery + timeout + time.Minute)
	for {
		select {
		case <-ctx.Done():
			return inv, ctx.Err()
		case <-time.After(poll):
		}
		got, err := r.SSM.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(inv.CommandID), InstanceId: aws.String(c.InstanceID)})
		if err != nil {
			// Right after SendCommand the invocation may not exist yet.
			if awserr.SSMNotFound(err) && time.Now().Before(deadline) {
				continue
			}
			return inv, fmt.Errorf("ssm get-command-invocation %s: %w", inv.CommandID, err)
		}
		inv.Status, inv.ResponseCode = string(got.Status), got.ResponseCode
		switch got.Status {
		case ssmtypes.CommandInvocationStatusPending, ssmtypes.CommandInvocationStatusInProgress, ssmtypes.CommandInvocationStatusDelayed:
			if time.Now().After(deadline) {
				return inv, fmt.Errorf("%w: ssm command %s still %s after %s", ErrCommandFailed, inv.CommandID, got.Status, timeout)
			}
			continue
		}
		inv.Stdout, inv.Stderr = aws.ToString(got.StandardOutputContent), aws.ToString(got.StandardErrorContent)
		if len(inv.Stdout) >= InlineOutputLimit && r.OutputBucket != "" && r.S3 != nil {
			if full, err := r.fullOutput(ctx, inv, aws.ToString(got.StandardOutputUrl)); err == nil {
				inv.Stdout = full
			} else {
				inv.Stdout += fmt.Sprintf("\n[output cut at %d characters; the rest could not be read from s3://%s: %v]", InlineOutputLimit, r.OutputBucket, err)
			}
		}
		if got.Status == ssmtypes.CommandInvocationStatusSuccess {
			return inv, nil
		}
		return inv, fmt.Errorf("%w: ssm command %s on %s: %s (exit %d)", ErrCommandFailed, inv.CommandID, c.InstanceID, got.Status, got.ResponseCode)
	}
}

// OutputKey is where SSM writes one stream ("stdout" or "stderr") of an AWS-RunShellScript
// command when an output bucket is given.
func (r *RunCommand) OutputKey(commandID, instanceID, stream string) string {
	p := strings.TrimSuffix(r.OutputPrefix, "/")
	if p != "" {
		p += "/"
	}
	return p + commandID + "/" + instanceID + "/awsrunShellScript/0.awsrunShellScript/" + stream
}

// fullOutput reads the whole stdout from the output bucket: the key from the invocation's
// StandardOutputUrl (https://s3.REGION.amazonaws.com/BUCKET/KEY) when it names the bucket,
// else the documented layout.
func (r *RunCommand) fullOutput(ctx context.Context, inv Invocation, url string) (string, error) {
	key := r.OutputKey(inv.CommandID, inv.InstanceID, "stdout")
	if _, k, ok := strings.Cut(url, "/"+r.OutputBucket+"/"); ok && k != "" {
		key = k
	}
	out, err := r.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.OutputBucket), Key: aws.String(key)})
	if err != nil {
		return "", fmt.Errorf("get s3://%s/%s: %w", r.OutputBucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return "", fmt.Errorf("read s3://%s/%s: %w", r.OutputBucket, key, err)
	}
	return string(b), nil
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
