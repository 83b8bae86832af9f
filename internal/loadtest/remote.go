package loadtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/shtetl/zmanim-ops/internal/awsx"
)

// Production mode: one ephemeral arm64 instance per region runs zops-loadgen against the real
// edge, driven through SSM Run Command, and uploads its result to S3, where the orchestrator
// collects and merges them. The AWS calls sit behind three small interfaces so that the
// orchestration is tested without AWS, and the SDK implementations are tested against an
// httptest server that answers the SDK.

// Fleet starts and stops runner instances.
type Fleet interface {
	// Launch starts one runner instance in region and returns its id. The instance must
	// terminate itself when shut down, and shut itself down after spec.MaxLifetime, so a
	// crashed orchestrator cannot leave it running.
	Launch(ctx context.Context, region string, spec RunnerInstance) (string, error)
	// WaitOnline returns once the instance is registered with SSM and online.
	WaitOnline(ctx context.Context, region, id string) error
	// Terminate terminates the instances; terminating a gone instance is not an error.
	Terminate(ctx context.Context, region string, ids ...string) error
}

// Commander runs a shell script on an instance through SSM and waits for it to finish.
type Commander interface {
	// Run returns the command's output; a command that ran and failed is an error carrying
	// its output.
	Run(ctx context.Context, region, instanceID string, commands []string, timeout time.Duration) (string, error)
}

// Store holds runner binaries, specs and results (an S3 bucket in the home region).
type Store interface {
	// Put stores body under key, replacing what was there.
	Put(ctx context.Context, key string, body []byte) error
	// Get returns the object under key.
	Get(ctx context.Context, key string) ([]byte, error)
	// URI is the s3:// address of key, for the runner's aws cli.
	URI(key string) string
}

// RunnerInstance describes the runner instances.
type RunnerInstance struct {
	ImageID         string        // default: latest Amazon Linux 2023 arm64 through its public SSM parameter
	InstanceType    string        // default t4g.small (Graviton, arm64)
	InstanceProfile string        // IAM instance profile: SSM managed instance + read/write the results bucket
	MaxLifetime     time.Duration // self-termination deadline (default 2h)
	Tags            map[string]string
}

func (r *RunnerInstance) defaults() {
	if r.ImageID == "" {
		r.ImageID = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
	}
	if r.InstanceType == "" {
		r.InstanceType = "t4g.small"
	}
	if r.MaxLifetime <= 0 {
		r.MaxLifetime = 2 * time.Hour
	}
}

// Remote orchestrates regional runners.
type Remote struct {
	Fleet     Fleet
	Commander Commander
	Store     Store
	Instance  RunnerInstance
	// HomeRegion is the region of the store bucket and of the token parameter.
	HomeRegion string
	Log        io.Writer
}

// RunRemote runs each region's spec on its own runner and merges the results. Runner
// binaries are uploaded once (binary: a linux/arm64 build of cmd/zops-loadgen). Instances are
// terminated whatever happens.
func (r *Remote) RunRemote(ctx context.Context, runID string, binary []byte, specs []RunSpec) (*Result, error) {
	r.Instance.defaults()
	log := r.Log
	if log == nil {
		log = io.Discard
	}
	prefix := "loadtest/" + runID + "/"
	if err := r.Store.Put(ctx, prefix+"zops-loadgen", binary); err != nil {
		return nil, fmt.Errorf("upload runner: %w", err)
	}
	results := make([]*Result, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, spec := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = r.runRegion(ctx, prefix, spec, log)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("runner %s: %w", spec.Region, errs[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return MergeResults(results)
}

func (r *Remote) runRegion(ctx context.Context, prefix string, spec RunSpec, log io.Writer) (*Result, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	specKey, resultKey := prefix+spec.Region+"/spec.json", prefix+spec.Region+"/result.json"
	if err := r.Store.Put(ctx, specKey, b); err != nil {
		return nil, fmt.Errorf("upload spec: %w", err)
	}
	inst := r.Instance
	inst.Tags = map[string]string{"zops:loadtest": prefix, "Name": "zops-loadtest-" + spec.Region}
	id, err := r.Fleet.Launch(ctx, spec.Region, inst)
	if err != nil {
		return nil, fmt.Errorf("launch: %w", err)
	}
	fmt.Fprintf(log, "loadtest: %s: runner %s launched\n", spec.Region, id)
	defer func() {
		// A fresh context: the runner must go even when ctx was cancelled.
		tctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.Fleet.Terminate(tctx, spec.Region, id); err != nil {
			fmt.Fprintf(log, "loadtest: %s: TERMINATE %s BY HAND: %v\n", spec.Region, id, err)
		} else {
			fmt.Fprintf(log, "loadtest: %s: runner %s terminated\n", spec.Region, id)
		}
	}()
	if err := r.Fleet.WaitOnline(ctx, spec.Region, id); err != nil {
		return nil, fmt.Errorf("wait for SSM on %s: %w", id, err)
	}
	var total time.Duration
	for _, s := range spec.Stages {
		total += s.Duration
	}
	cmds := RunnerCommands(r.Store.URI(prefix+"zops-loadgen"), r.Store.URI(specKey), r.Store.URI(resultKey), r.HomeRegion)
	out, err := r.Commander.Run(ctx, spec.Region, id, cmds, total+time.Until(spec.StartAt)+5*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	fmt.Fprintf(log, "loadtest: %s: %s\n", spec.Region, strings.TrimSpace(lastLine(out)))
	rb, err := r.Store.Get(ctx, resultKey)
	if err != nil {
		return nil, fmt.Errorf("fetch result: %w", err)
	}
	var res Result
	if err := json.Unmarshal(rb, &res); err != nil {
		return nil, fmt.Errorf("decode result: %w", err)
	}
	return &res, nil
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// RunnerCommands is the shell script SSM runs on a runner.
func RunnerCommands(binURI, specURI, resultURI, homeRegion string) []string {
	return []string{
		"set -euo pipefail",
		"cd /tmp",
		fmt.Sprintf("aws s3 cp --region %s %s ./zops-loadgen", homeRegion, binURI),
		fmt.Sprintf("aws s3 cp --region %s %s ./spec.json", homeRegion, specURI),
		"chmod +x ./zops-loadgen",
		fmt.Sprintf("AWS_REGION=%s ./zops-loadgen run -spec ./spec.json -out ./result.json", homeRegion),
		fmt.Sprintf("aws s3 cp --region %s ./result.json %s", homeRegion, resultURI),
	}
}

// --- SDK implementations ---

// AWSClients builds the SDK implementations. Endpoint, when set, replaces every service's
// endpoint (tests point it at an httptest server; kumo does not implement these calls).
type AWSClients struct {
	cfg      aws.Config
	endpoint string
	bucket   string
	home     string
	// Poll is the polling interval for SSM (default 5 s).
	Poll time.Duration
}

// NewAWSClients loads the default AWS configuration (environment, profile, instance role).
func NewAWSClients(ctx context.Context, homeRegion, bucket, endpoint string) (*AWSClients, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(homeRegion))
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return NewAWSClientsFromConfig(cfg, homeRegion, bucket, endpoint), nil
}

// NewAWSClientsFromConfig builds the clients from an existing configuration.
func NewAWSClientsFromConfig(cfg aws.Config, homeRegion, bucket, endpoint string) *AWSClients {
	return &AWSClients{cfg: cfg, endpoint: endpoint, bucket: bucket, home: homeRegion, Poll: 5 * time.Second}
}

var (
	_ Fleet     = (*AWSClients)(nil)
	_ Commander = (*AWSClients)(nil)
	_ Store     = (*AWSClients)(nil)
)

func (c *AWSClients) ec2(region string) *ec2.Client {
	return ec2.NewFromConfig(c.cfg, func(o *ec2.Options) {
		o.Region = region
		if c.endpoint != "" {
			o.BaseEndpoint = aws.String(c.endpoint)
		}
	})
}

func (c *AWSClients) ssm(region string) *ssm.Client {
	return ssm.NewFromConfig(c.cfg, func(o *ssm.Options) {
		o.Region = region
		if c.endpoint != "" {
			o.BaseEndpoint = aws.String(c.endpoint)
		}
	})
}

func (c *AWSClients) s3() *s3.Client {
	return s3.NewFromConfig(c.cfg, func(o *s3.Options) {
		o.Region = c.home
		if c.endpoint != "" {
			o.BaseEndpoint = aws.String(c.endpoint)
			o.UsePathStyle = true
		}
	})
}

// Launch implements Fleet.
func (c *AWSClients) Launch(ctx context.Context, region string, spec RunnerInstance) (string, error) {
	spec.defaults()
	userData := fmt.Sprintf("#!/bin/bash\nshutdown -h +%d\n", int(spec.MaxLifetime.Minutes()))
	var tags []ec2types.Tag
	keys := make([]string, 0, len(spec.Tags))
	for k := range spec.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		tags = append(tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(spec.Tags[k])})
	}
	in := &ec2.RunInstancesInput{
		ImageId:                           aws.String(spec.ImageID),
		InstanceType:                      ec2types.InstanceType(spec.InstanceType),
		MinCount:                          aws.Int32(1),
		MaxCount:                          aws.Int32(1),
		InstanceInitiatedShutdownBehavior: ec2types.ShutdownBehaviorTerminate,
		UserData:                          aws.String(base64.StdEncoding.EncodeToString([]byte(userData))),
		MetadataOptions:                   &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired},
		TagSpecifications:                 []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tags}},
	}
	if spec.InstanceProfile != "" {
		in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Name: aws.String(spec.InstanceProfile)}
	}
	out, err := c.ec2(region).RunInstances(ctx, in)
	if err != nil {
		return "", fmt.Errorf("run instance in %s: %w", region, err)
	}
	if len(out.Instances) == 0 || out.Instances[0].InstanceId == nil {
		return "", fmt.Errorf("run instance in %s: no instance in the answer", region)
	}
	return *out.Instances[0].InstanceId, nil
}

// WaitOnline implements Fleet: it polls SSM until the instance's agent reports online.
func (c *AWSClients) WaitOnline(ctx context.Context, region, id string) error {
	cl := c.ssm(region)
	for {
		out, err := cl.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
			Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{id}}},
		})
		if err != nil {
			return fmt.Errorf("describe instance information: %w", err)
		}
		for _, ii := range out.InstanceInformationList {
			if aws.ToString(ii.InstanceId) == id && ii.PingStatus == ssmtypes.PingStatusOnline {
				return nil
			}
		}
		if err := sleepCtx(ctx, c.Poll); err != nil {
			return err
		}
	}
}

// Terminate implements Fleet.
func (c *AWSClients) Terminate(ctx context.Context, region string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := c.ec2(region).TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	if err != nil && strings.Contains(err.Error(), "InvalidInstanceID.NotFound") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("terminate %v in %s: %w", ids, region, err)
	}
	return nil
}

// Run implements Commander with awsx.RunCommand; the whole output also goes to the results
// bucket (ssm-output/ under the home prefix), since the inline output is cut at 24,000
// characters.
func (c *AWSClients) Run(ctx context.Context, region, id string, commands []string, timeout time.Duration) (string, error) {
	rc := &awsx.RunCommand{SSM: c.ssm(region), Poll: c.Poll, OutputBucket: c.bucket, OutputPrefix: "loadtest/ssm-output/", S3: c.s3()}
	inv, err := rc.Run(ctx, awsx.Command{InstanceID: id, Commands: commands, Comment: "zmanim-ops loadtest runner", Timeout: timeout, Delivery: 10 * time.Minute}, nil)
	if err != nil && errors.Is(err, awsx.ErrCommandFailed) {
		return inv.Stdout, fmt.Errorf("%w: command %s on %s: %s: %s", awsx.ErrCommandFailed, inv.CommandID, id, inv.Status, strings.TrimSpace(inv.Stderr))
	}
	return inv.Stdout, err
}

// Put implements Store.
func (c *AWSClients) Put(ctx context.Context, key string, body []byte) error {
	_, err := c.s3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", c.bucket, key, err)
	}
	return nil
}

// Get implements Store.
func (c *AWSClients) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := c.s3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", c.bucket, key, err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// URI implements Store.
func (c *AWSClients) URI(key string) string { return "s3://" + c.bucket + "/" + key }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
