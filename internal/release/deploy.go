package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/awsx/ec2x"
	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// Deployer switches the box to a version that is in the bucket.
type Deployer interface {
	// Where describes the target, e.g. "the twin's box" or "i-0abc over SSM".
	Where() string
	// Deploy installs version and switches to it, health gate and rollback included.
	Deploy(ctx context.Context, version string) (onbox.Outcome, error)
}

// ErrOutcomeUnknown means the deployer cannot tell whether the box switched: the command was
// sent but following it failed (SSM polling errors, the wait ran out while it still ran).
var ErrOutcomeUnknown = errors.New("the box's state after the deploy is unknown")

// BoxState is what the deploy step knows about the box afterwards.
type BoxState int

// Box states. After BoxSwitched the box is the truth (issue 14, finding 7): the pointer and the
// history follow it, and a later failure (retention, the history write) may warn but never
// undo. After BoxUnknown nothing is undone either: the operator checks the box first.
const (
	BoxUnchanged BoxState = iota // not deployed, or failed before the switch / rolled back
	BoxSwitched                  // the new version serves
	BoxUnknown                   // sent, but the result could not be read
)

func (b BoxState) String() string {
	return [...]string{"unchanged", "switched", "unknown"}[b]
}

// Deploy is the pipeline step around a Deployer.
type Deploy struct {
	Deployer Deployer
	Version  func() string

	Outcome onbox.Outcome // filled by Run
	state   BoxState
}

// State says whether the box switched (valid after Run).
func (d *Deploy) State() BoxState { return d.state }

func (d *Deploy) String() string {
	return "deploy to " + d.Deployer.Where() + " with health gate and automatic rollback"
}

// Run deploys.
func (d *Deploy) Run(ctx context.Context) error {
	o, err := d.Deployer.Deploy(ctx, d.Version())
	d.Outcome = o
	switch {
	case err == nil:
		d.state = BoxSwitched
	case errors.Is(err, ErrOutcomeUnknown):
		d.state = BoxUnknown
	default:
		d.state = BoxUnchanged
	}
	return err
}

// Fenced is a Deployer that passes the release lock's fencing token to the box, which refuses
// a token older than one it has seen (onbox.ErrFenced).
type Fenced interface {
	SetFence(token func() int64)
}

// LocalDeployer runs the on-box Agent in this process (the twin).
type LocalDeployer struct {
	Agent *onbox.Agent
	Name  string
	fence func() int64
}

// SetFence passes the release lock's token to the agent.
func (l *LocalDeployer) SetFence(token func() int64) { l.fence = token }

// Where names the box.
func (l *LocalDeployer) Where() string { return l.Name }

// Deploy runs the agent and prunes old installs after a success.
func (l *LocalDeployer) Deploy(ctx context.Context, version string) (onbox.Outcome, error) {
	if l.fence != nil {
		l.Agent.Fence = l.fence()
	}
	o, err := l.Agent.Deploy(ctx, version)
	if err == nil {
		if removed, perr := l.Agent.Prune(o.Previous); perr == nil && len(removed) > 0 && l.Agent.Out != nil {
			fmt.Fprintf(l.Agent.Out, "  removed old installs: %s\n", strings.Join(removed, ", "))
		}
	}
	return o, err
}

// ZopsBox is where the agent is installed on the box (deploy/systemd).
const ZopsBox = boxspec.ZopsBox

// SSMDeployer runs `zops-box deploy VERSION` on the production box with SSM Run Command
// (document AWS-RunShellScript) and waits for it, printing the command's output. The
// agent on the box does exactly what the twin does in-process.
type SSMDeployer struct {
	SSM        awsx.SSMCommandAPI
	EC2        ec2x.DescribeAPI
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
	fence      func() int64
	found      string // the instance found by NameTag, for the rest of the release
}

// SetFence passes the release lock's token to `zops-box deploy --fence`.
func (s *SSMDeployer) SetFence(token func() int64) { s.fence = token }

// SSMTimeout is the Run Command execution timeout for the box's unit settings and health
// gate: the agent's worst failure path (onbox.DeployWorstCase) plus a minute.
func SSMTimeout(startTimeout, stopTimeout, health time.Duration) time.Duration {
	return onbox.DeployWorstCase(startTimeout, stopTimeout, health) + time.Minute
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
	if s.fence != nil {
		if t := s.fence(); t > 0 {
			cmd += fmt.Sprintf(" --fence %d", t)
		}
	}
	return cmd + " " + shellQuote(version)
}

// InstallCommand is the stage step's shell command (boxspec.InstallArgv).
func (s *SSMDeployer) InstallCommand(version string) string {
	argv := boxspec.InstallArgv(s.Bucket, s.Region, s.Keep, version)
	for i, a := range argv {
		if i > 1 && !strings.HasPrefix(a, "--") && argv[i-1] != "--keep" { // the values: bucket, region, version
			argv[i] = shellQuote(a)
		}
	}
	return strings.Join(argv, " ")
}

// Stage installs version on the box ahead of the deploy (Stager): one Run Command of
// `zops-box install`. A failure leaves the serving release untouched.
func (s *SSMDeployer) Stage(ctx context.Context, version string) error {
	id, err := s.instance(ctx)
	if err != nil {
		return err
	}
	rc := &awsx.RunCommand{SSM: s.SSM, Poll: s.Poll}
	cmd := s.InstallCommand(version)
	inv, err := rc.Run(ctx, awsx.Command{InstanceID: id, Commands: []string{cmd}, Comment: s.Comment, Timeout: onbox.DownloadBudget + time.Minute},
		func(cmdID string) { fmt.Fprintf(s.out(), "  ssm command %s on %s: %s\n", cmdID, id, cmd) })
	if inv.Stdout != "" {
		fmt.Fprintln(s.out(), indent(inv.Stdout))
	}
	if err != nil {
		detail := ""
		if inv.Stderr != "" {
			detail = ":\n" + indent(inv.Stderr)
		}
		return fmt.Errorf("%w: ssm command %s on %s: %s (exit %d)%s: %w", ErrRemote, inv.CommandID, id, inv.Status, inv.ResponseCode, detail, err)
	}
	return nil
}

var _ Stager = (*SSMDeployer)(nil)

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (s *SSMDeployer) instance(ctx context.Context) (string, error) {
	if s.InstanceID != "" {
		return s.InstanceID, nil
	}
	if s.found != "" { // the stage step found it; the deploy goes to the same box
		return s.found, nil
	}
	if s.EC2 == nil {
		return "", errors.New("no instance id: set instance.instance_id in zmanim-ops.yaml or ZOPS_INSTANCE_ID")
	}
	id, err := ec2x.RunningByName(ctx, s.EC2, s.NameTag)
	if err != nil {
		return "", fmt.Errorf("find the box: %w; set ZOPS_INSTANCE_ID", err)
	}
	s.found = id
	return id, nil
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
	rc := &awsx.RunCommand{SSM: s.SSM, Poll: s.Poll}
	cmd := s.Command(version)
	inv, err := rc.Run(ctx, awsx.Command{InstanceID: id, Commands: []string{cmd}, Comment: s.Comment, Timeout: timeout},
		func(cmdID string) { fmt.Fprintf(s.out(), "  ssm command %s on %s: %s\n", cmdID, id, cmd) })
	if inv.Stdout != "" {
		fmt.Fprintln(s.out(), indent(inv.Stdout))
	}
	if err == nil {
		return o, nil
	}
	switch inv.Status {
	case "", "Pending", "InProgress", "Delayed":
		if inv.CommandID != "" {
			// Sent, but its end was not seen: the box may have switched.
			return o, fmt.Errorf("%w: ssm command %s on %s: %w; check with `go tool mage release:status` before releasing again", ErrOutcomeUnknown, inv.CommandID, id, err)
		}
	}
	if !errors.Is(err, awsx.ErrCommandFailed) || inv.Status == "" {
		return o, err
	}
	o.Logs = inv.Stderr
	if strings.Contains(inv.Stdout+inv.Stderr, "rolled back") {
		o.RolledBack = true
		return o, fmt.Errorf("%w: on %s (exit %d):\n%s", onbox.ErrHealthGate, id, inv.ResponseCode, indent(inv.Stderr))
	}
	return o, fmt.Errorf("%w: ssm command %s on %s: %s (exit %d):\n%s", ErrRemote, inv.CommandID, id, inv.Status, inv.ResponseCode, indent(inv.Stderr))
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
