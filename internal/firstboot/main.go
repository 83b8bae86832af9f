package firstboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/firstboot/claim"
)

// ReadInstanceFile parses boxspec.InstanceFile (KEY=value lines, # comments). Unknown keys are
// refused so that a typo does not silently fall back to a default.
func ReadInstanceFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (the CDK user data writes it)", ErrInput, err)
	}
	known := map[string]bool{}
	for _, k := range boxspec.InstanceKeys {
		known[k] = true
	}
	out := map[string]string{}
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || !known[k] {
			return nil, fmt.Errorf("%w: %s line %d: %q is not one of %s", ErrInput, path, i+1, k, strings.Join(boxspec.InstanceKeys, ", "))
		}
		out[k] = strings.Trim(v, `"'`)
	}
	return out, nil
}

// InputsFrom turns the instance file into Inputs.
func InputsFrom(kv map[string]string) (Inputs, error) {
	in := Inputs{Region: kv[boxspec.KeyRegion], SSMPrefix: kv[boxspec.KeySSMPrefix], VolumeID: kv[boxspec.KeyVolumeID], Device: kv[boxspec.KeyDataDevice]}
	if w := kv[boxspec.KeyDeviceWait]; w != "" {
		d, err := time.ParseDuration(w)
		if err != nil {
			return in, fmt.Errorf("%w: %s=%q is not a duration (e.g. 10m)", ErrInput, boxspec.KeyDeviceWait, w)
		}
		in.Wait = d
	}
	return in, nil
}

// Main is `zops-box firstboot`: it reads the instance file, asks IMDSv2 for what the file
// lacks (region), and runs the steps against the real system. start says whether to start
// zmanim.target at the end (the unit does).
func Main(ctx context.Context, root string, start bool, out io.Writer) error {
	// The unit is ordered after cloud-init's init stage, which writes the file; still give a
	// slow cloud-init two minutes before failing.
	path := root + boxspec.InstanceFile
	for i := 0; i < 120; i++ {
		if _, err := os.Stat(path); err == nil || ctx.Err() != nil {
			break
		}
		if i == 0 {
			fmt.Fprintf(out, "firstboot: waiting for %s (the user data writes it)\n", boxspec.InstanceFile)
		}
		time.Sleep(time.Second)
	}
	kv, err := ReadInstanceFile(path)
	if err != nil {
		fmt.Fprintln(out, "firstboot:", err)
		return err
	}
	// The AWS_* keys are the SDK's own variables: set them before the configuration loads.
	for _, k := range []string{boxspec.KeySSMEndpoint, boxspec.KeyIMDSEndpoint} {
		if v := kv[k]; v != "" {
			os.Setenv(k, v)
		}
	}
	in, err := InputsFrom(kv)
	if err != nil {
		fmt.Fprintln(out, "firstboot:", err)
		return err
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws configuration: %w", err)
	}
	md := imds.NewFromConfig(cfg)
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	id, idErr := md.GetMetadata(ictx, &imds.GetMetadataInput{Path: "instance-id"})
	cancel()
	if idErr == nil {
		b, _ := io.ReadAll(id.Content)
		id.Content.Close()
		fmt.Fprintf(out, "firstboot: instance %s\n", bytes.TrimSpace(b))
	}
	if in.Region == "" {
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := md.GetRegion(ictx, &imds.GetRegionInput{})
		cancel()
		if err != nil {
			err = fmt.Errorf("%w: no %s and the instance metadata (IMDSv2) gave no region: %v", ErrInput, boxspec.KeyRegion, err)
			fmt.Fprintln(out, "firstboot:", err)
			return err
		}
		in.Region = r.Region
	}
	cfg.Region = in.Region
	b := &Boot{
		Root: root, In: in, Exec: execRunner{}, Out: out, Start: start,
		SSM: ssm.NewFromConfig(cfg, func(o *ssm.Options) {
			if v := kv[boxspec.KeySSMEndpoint]; v != "" {
				o.BaseEndpoint = aws.String(v)
			}
		}),
	}
	if in.Device == "" && in.VolumeID != "" {
		// Production: the instance claims the volume, the address and its Cloud Map entry.
		c, err := newClaimer(ctx, b, md, cfg, out)
		if err != nil {
			fmt.Fprintln(out, "firstboot: FAILED at \"claim\":", err)
			return err
		}
		b.Claim = c
	}
	return b.Run(ctx)
}

// newClaimer builds the claim from the box parameter and the instance metadata.
func newClaimer(ctx context.Context, b *Boot, md *imds.Client, cfg aws.Config, out io.Writer) (*claim.Box, error) {
	raw, err := b.param(ctx, claim.Param)
	if err != nil {
		return nil, err
	}
	p, err := claim.ParseParams(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.full(claim.Param), err)
	}
	meta := func(path string) (string, error) {
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r, err := md.GetMetadata(ictx, &imds.GetMetadataInput{Path: path})
		if err != nil {
			return "", fmt.Errorf("instance metadata %s: %w", path, err)
		}
		defer r.Content.Close()
		v, err := io.ReadAll(r.Content)
		return strings.TrimSpace(string(v)), err
	}
	box := &claim.Box{P: p, Out: out,
		EC2:      &claim.QueryEC2{Region: cfg.Region, Credentials: cfg.Credentials},
		CloudMap: servicediscovery.NewFromConfig(cfg),
	}
	for path, dst := range map[string]*string{"instance-id": &box.InstanceID, "local-ipv4": &box.PrivateIP, "placement/availability-zone": &box.Zone} {
		if *dst, err = meta(path); err != nil {
			return nil, err
		}
	}
	return box, nil
}

// execRunner runs programs on the real system.
type execRunner struct{}

func (execRunner) Run(ctx context.Context, name string, args ...string) (string, int, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode(), nil
	}
	if err != nil {
		return string(out), -1, err
	}
	return string(out), 0, nil
}
