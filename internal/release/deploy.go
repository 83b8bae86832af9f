package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// Deployer switches the box to a version that is in the bucket.
type Deployer interface {
	// Where describes the target, e.g. "the twin's box" or "i-0abc over SSM".
	Where() string
	// Deploy installs version and switches to it, health gate and rollback included.
	Deploy(ctx context.Context, version string) (onbox.Outcome, error)
}

// Deploy is the pipeline step around a Deployer.
type Deploy struct {
	Deployer Deployer
	Version  func() string

	Outcome onbox.Outcome // filled by Run
}

func (d *Deploy) String() string {
	return "deploy to " + d.Deployer.Where() + " with health gate and automatic rollback"
}

// Run deploys.
func (d *Deploy) Run(ctx context.Context) error {
	o, err := d.Deployer.Deploy(ctx, d.Version())
	d.Outcome = o
	return err
}

// LocalDeployer runs the on-box Agent in this process (the twin).
type LocalDeployer struct {
	Agent *onbox.Agent
	Name  string
}

// Where names the box.
func (l *LocalDeployer) Where() string { return l.Name }

// Deploy runs the agent and prunes old installs after a success.
func (l *LocalDeployer) Deploy(ctx context.Context, version string) (onbox.Outcome, error) {
	o, err := l.Agent.Deploy(ctx, version)
	if err == nil {
		if removed, perr := l.Agent.Prune(o.Previous); perr == nil && len(removed) > 0 && l.Agent.Out != nil {
			fmt.Fprintf(l.Agent.Out, "  removed old installs: %s\n", strings.Join(removed, ", "))
		}
	}
	return o, err
}

// SSMAPI is the part of the SSM client the prod deployer uses.
type SSMAPI interface {
	SendCommand(ctx context.Context, in *ssm.SendCommandInput, optFns ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	GetCommandInvocation(ctx context.Context, in *ssm.GetCommandInvocationInput, optFns ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
}

// EC2API finds the box by tag when no instance id is configured.
type EC2API interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// ZopsBox is where the agent is installed on the box (deploy/systemd).
const ZopsBox = "/opt/zmanim/bin/zops-box"

// SSMDeployer runs `zops-box deploy VERSION` on the production box with SSM Run Command
// (document AWS-RunShellScript) and waits for it, printing the command's output. The
// agent on the box does exactly what the twin does in-process.
type SSMDeployer struct {
	SSM        SSMAPI
	EC2        EC2API
	InstanceID string // config instance.instance_id; else found by the tag Name=<NameTag>
	NameTag    string
	Bucket     string
	Region     string
	Health     time.Duration // release.health_timeout, passed to the agent
	Keep       int           // release.keep, installed releases kept on the box
	Timeout    time.Duration // whole command (health gate and rollback included)
	Poll       time.Duration
	Comment    string
	Out        io.Writer
}

// Where names the instance.
func (s *SSMDeployer) Where() string {
	if s.InstanceID != "" {
		return s.InstanceID + " over SSM Run Command"
	}
	return "the instance tagged Name=" + s.NameTag + " over SSM Run Command"
}

// ErrRemote is a failed remote command.
var ErrRemote = errors.New("remote deploy failed")

// Command is the shell command sent to the box.
func (s *SSMDeployer) Command(version string) string {
	cmd := fmt.Sprintf("%s deploy --bucket %s", ZopsBox, shellQuote(s.Bucket))
	if s.Region != "" {
		cmd += " --region " + shellQuote(s.Region)
	}
	if s.Health > 0 {
		cmd += " --health-timeout " + s.Health.String()
	}
	if s.Keep > 0 {
		cmd += fmt.Sprintf(" --keep %d", s.Keep)
	}
	return cmd + " " + shellQuote(version)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (s *SSMDeployer) instance(ctx context.Context) (string, error) {
	if s.InstanceID != "" {
		return s.InstanceID, nil
	}
	if s.EC2 == nil {
		return "", errors.New("no instance id: set instance.instance_id in zmanim-ops.yaml or ZOPS_INSTANCE_ID")
	}
	out, err := s.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:Name"), Values: []string{s.NameTag}},
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
	}})
	if err != nil {
		return "", fmt.Errorf("find the box by tag Name=%s: %w", s.NameTag, err)
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("find the box: %d running instances tagged Name=%s (%s); set ZOPS_INSTANCE_ID", len(ids), s.NameTag, strings.Join(ids, ", "))
	}
	return ids[0], nil
}

// Deploy sends the command and waits for its result.
func (s *SSMDeployer) Deploy(ctx context.Context, version string) (onbox.Outcome, error) {
	o := onbox.Outcome{Version: version}
	id, err := s.instance(ctx)
	if err != nil {
		return o, err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	sent, err := s.SSM.SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName:   aws.String("AWS-RunShellScript"),
		InstanceIds:    []string{id},
		Comment:        aws.String(trunc(s.Comment, 100)),
		TimeoutSeconds: aws.Int32(int32(timeout / time.Second)),
		Parameters: map[string][]string{
			"commands":         {s.Command(version)},
			"executionTimeout": {fmt.Sprint(int(timeout / time.Second))},
		},
	})
	if err != nil {
		return o, fmt.Errorf("ssm send-command to %s: %w", id, err)
	}
	cmdID := aws.ToString(sent.Command.CommandId)
	fmt.Fprintf(s.out(), "  ssm command %s on %s: %s\n", cmdID, id, s.Command(version))
	poll := s.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	deadline := time.Now().Add(timeout + time.Minute)
	for {
		select {
		case <-ctx.Done():
			return o, ctx.Err()
		case <-time.After(poll):
		}
		inv, err := s.SSM.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(cmdID), InstanceId: aws.String(id)})
		if err != nil {
			// Right after SendCommand the invocation may not exist yet.
			if strings.Contains(err.Error(), "InvocationDoesNotExist") && time.Now().Before(deadline) {
				continue
			}
			return o, fmt.Errorf("ssm get-command-invocation %s: %w", cmdID, err)
		}
		switch inv.Status {
		case ssmtypes.CommandInvocationStatusPending, ssmtypes.CommandInvocationStatusInProgress, ssmtypes.CommandInvocationStatusDelayed:
			if time.Now().After(deadline) {
				return o, fmt.Errorf("%w: ssm command %s still %s after %s", ErrRemote, cmdID, inv.Status, timeout)
			}
			continue
		}
		stdout, stderr := aws.ToString(inv.StandardOutputContent), aws.ToString(inv.StandardErrorContent)
		if stdout != "" {
			fmt.Fprintln(s.out(), indent(stdout))
		}
		if inv.Status == ssmtypes.CommandInvocationStatusSuccess {
			return o, nil
		}
		o.Logs = stderr
		if strings.Contains(stdout+stderr, "rolled back") {
			o.RolledBack = true
			return o, fmt.Errorf("%w: on %s (exit %d):\n%s", onbox.ErrHealthGate, id, inv.ResponseCode, indent(stderr))
		}
		return o, fmt.Errorf("%w: ssm command %s on %s: %s (exit %d):\n%s", ErrRemote, cmdID, id, inv.Status, inv.ResponseCode, indent(stderr))
	}
}

func (s *SSMDeployer) out() io.Writer {
	if s.Out == nil {
		return io.Discard
	}
	return s.Out
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n")
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
