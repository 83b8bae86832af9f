// Package firstboot prepares the zmanim box on every boot (zops-box firstboot, run by
// zops-firstboot.service): it waits for the data volume, formats it only when blkid finds it
// blank, mounts it at /data by UUID, prepares its directories and the PostgreSQL cluster, writes
// the API's environment file from SSM and starts zmanim.target. Every step is idempotent, so
// the unit is safe to rerun after a reboot or a fixed failure; a failing step fails the unit with
// a message that names what was wrong (a missing SSM parameter by its full name).
//
// It replaces the once-only user data script: user data now only writes the instance file
// (region, SSM prefix, volume id), which this package reads together with IMDSv2.
package firstboot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/shtetl/zmanim-ops/internal/awsx/ssmx"
	"github.com/shtetl/zmanim-ops/internal/boxspec"
)

// Errors of first boot.
var (
	ErrParameterMissing = ssmx.ErrParameterMissing
	ErrNoVolume         = errors.New("data volume not attached")
	ErrProbe            = errors.New("cannot tell whether the data volume is blank")
	ErrInput            = errors.New("instance file incomplete")
)

// Runner runs a system program and returns its output and exit code. A program that ran and
// exited non-zero returns its code with a nil error; err is for programs that could not run.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) (out string, code int, err error)
}

// Params reads SSM parameters (ssm.Client satisfies it).
type Params interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// Inputs are the instance-specific values (boxspec.InstanceFile plus IMDS).
type Inputs struct {
	Region, SSMPrefix string
	VolumeID          string        // EBS volume id (production)
	Device            string        // a device path instead (the local proof's loop device)
	Wait              time.Duration // how long to wait for the device
}

// Boot is one run of first boot.
type Boot struct {
	Root   string // "/" on the box; a temporary directory in tests
	In     Inputs
	Exec   Runner
	SSM    Params
	Out    io.Writer
	Start  bool          // start zmanim.target at the end (false in tests)
	Poll   time.Duration // device polling interval
	Lookup func(name string) (uid, gid int, err error)
	// Claim, in production, makes this instance the live box (internal/firstboot/claim);
	// nil on the local proof, whose volume is a loop device.
	Claim Claimer
}

// Claimer makes this instance the live box: Claim attaches the data volume and moves the
// Elastic IP before the volume is awaited; Announce registers the box in Cloud Map once its
// services are started.
type Claimer interface {
	Claim(ctx context.Context) error
	Announce(ctx context.Context) error
}

func (b *Boot) path(p string) string { return filepath.Join(b.Root, p) }

func (b *Boot) logf(format string, args ...any) {
	fmt.Fprintf(b.Out, "firstboot: "+format+"\n", args...)
}

// step is one idempotent part of first boot.
type step struct {
	name string
	run  func(ctx context.Context) error
}

// Run executes the steps in order and stops at the first failure.
func (b *Boot) Run(ctx context.Context) error {
	if b.Poll == 0 {
		b.Poll = time.Second
	}
	if b.Lookup == nil {
		b.Lookup = lookupUser
	}
	var dev string
	var steps []step
	if b.Claim != nil {
		// The box is an Auto Scaling group's instance (infra/box_group.go): it attaches the
		// data volume itself, waiting while the old box still holds it, and takes the Elastic IP.
		steps = append(steps, step{"claim the data volume and the Elastic IP", b.Claim.Claim})
	}
	steps = append(steps, []step{
		// The attachment completes after the API call returns, so the device can be late.
		{"wait for the data volume", func(ctx context.Context) (err error) { dev, err = b.waitDevice(ctx); return }},
		// Trap 4: never format a volume that holds anything.
		{"format only a blank volume", func(ctx context.Context) error { return b.prepareVolume(ctx, dev) }},
		// Nitro renames devices between instances: mount by the filesystem's UUID.
		{"mount /data by UUID", func(ctx context.Context) error { return b.mountData(ctx, dev) }},
		{"data directories", func(ctx context.Context) error { return b.layout() }},
		{"PostgreSQL cluster", b.cluster},
		{"API environment from SSM", b.writeEnv},
		{"CloudWatch agent configuration", b.agent},
	}...)
	if b.Start {
		steps = append(steps, step{"start " + boxspec.UnitTarget, func(ctx context.Context) error {
			// --no-block: zmanim.target is ordered after this very unit.
			return b.must(ctx, "systemctl", "start", "--no-block", boxspec.UnitTarget)
		}})
	}
	if b.Claim != nil {
		// Last: API Gateway routes here from now on. The API's socket is listening once the
		// target starts (socket activation), so early requests wait instead of failing.
		steps = append(steps, step{"register in Cloud Map", b.Claim.Announce})
	}
	start := time.Now()
	for _, s := range steps {
		t := time.Now()
		if err := s.run(ctx); err != nil {
			b.logf("FAILED at %q: %v", s.name, err)
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.logf("%s: ok (%s)", s.name, time.Since(t).Round(time.Millisecond))
	}
	b.logf("done in %s", time.Since(start).Round(time.Millisecond))
	return nil
}

func (b *Boot) must(ctx context.Context, name string, args ...string) error {
	out, code, err := b.Exec.Run(ctx, name, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if code != 0 {
		return fmt.Errorf("%s %s exited %d: %s", name, strings.Join(args, " "), code, strings.TrimSpace(out))
	}
	return nil
}

// waitDevice returns the data volume's device once it exists.
func (b *Boot) waitDevice(ctx context.Context) (string, error) {
	dev := b.In.Device
	if dev == "" {
		if b.In.VolumeID == "" {
			return "", fmt.Errorf("%w: %s names neither %s nor %s", ErrInput, boxspec.InstanceFile, boxspec.KeyVolumeID, boxspec.KeyDataDevice)
		}
		dev = boxspec.VolumeLink(b.In.VolumeID)
	}
	wait := b.In.Wait
	if wait == 0 {
		wait = 10 * time.Minute
	}
	deadline := time.Now().Add(wait)
	for {
		if p, err := filepath.EvalSymlinks(b.path(dev)); err == nil {
			b.logf("data volume at %s", strings.TrimPrefix(p, strings.TrimSuffix(b.Root, "/")))
			return dev, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%w: %s did not appear within %s; attach the volume (the ami rollout does) and restart %s", ErrNoVolume, dev, wait, boxspec.UnitFirstBoot)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(b.Poll):
		}
	}
}

// prepareVolume formats dev only when `blkid -p` finds no signature at all (exit 2). A
// filesystem or partition table (exit 0) is kept; any other answer stops the boot rather than
// risk the data.
func (b *Boot) prepareVolume(ctx context.Context, dev string) error {
	out, code, err := b.Exec.Run(ctx, "blkid", "-p", dev)
	if err != nil {
		return fmt.Errorf("blkid: %w", err)
	}
	switch code {
	case 0:
		b.logf("%s holds data (%s): keeping it", dev, strings.TrimSpace(out))
		return nil
	case 2:
		b.logf("%s is blank: creating %s labelled %s", dev, boxspec.DataFSType, boxspec.DataLabel)
		return b.must(ctx, "mkfs."+boxspec.DataFSType, "-L", boxspec.DataLabel, dev)
	default:
		return fmt.Errorf("%w: blkid -p %s exited %d (%s); refusing to format, inspect the volume by hand", ErrProbe, dev, code, strings.TrimSpace(out))
	}
}

// mountData mounts the filesystem at /data by its UUID (Nitro renames devices between
// instances; the UUID stays). There is deliberately no fstab line: first boot mounts /data on
// every boot after waiting for the volume, so systemd never holds the boot on a late or
// missing volume's device (and without udev, as in the local proof, a device job for an fstab
// line never ends). A /data line left by the old user data script is removed. The services
// reach /data through RequiresMountsFor= and their ordering after first boot.
func (b *Boot) mountData(ctx context.Context, dev string) error {
	out, code, err := b.Exec.Run(ctx, "blkid", "-p", "-s", "UUID", "-o", "value", dev)
	uuid := strings.TrimSpace(out)
	if err != nil || code != 0 || uuid == "" {
		return fmt.Errorf("no filesystem UUID on %s (blkid exit %d): %v", dev, code, err)
	}
	fstab := b.path("/etc/fstab")
	old, err := os.ReadFile(fstab)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var keep []string
	dropped := false
	for _, l := range strings.Split(strings.TrimRight(string(old), "\n"), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[1] == boxspec.DataDir && !strings.HasPrefix(l, "#") {
			dropped = true
			continue
		}
		keep = append(keep, l)
	}
	if dropped {
		if err := writeAtomic(fstab, []byte(strings.Join(keep, "\n")+"\n"), 0o644, -1, -1); err != nil {
			return err
		}
		b.logf("removed the %s line from /etc/fstab (first boot mounts it)", boxspec.DataDir)
	}
	if err := os.MkdirAll(b.path(boxspec.DataDir), 0o755); err != nil {
		return err
	}
	if _, code, _ := b.Exec.Run(ctx, "mountpoint", "-q", boxspec.DataDir); code == 0 {
		b.logf("%s already mounted", boxspec.DataDir)
		return nil
	}
	b.logf("mounting UUID=%s at %s", uuid, boxspec.DataDir)
	return b.must(ctx, "mount", "-t", boxspec.DataFSType, "-o", "noatime", "UUID="+uuid, boxspec.DataDir)
}

// layout creates the data volume's directories with their owners (again on every boot: a
// restored volume may come with other ids).
func (b *Boot) layout() error {
	dirs := []struct {
		path, owner string
		mode        os.FileMode
	}{
		{boxspec.PGData, boxspec.PGUser, 0o700},
		{boxspec.WALArchive, boxspec.PGUser, 0o700},
		{boxspec.Scratch, boxspec.PGUser, 0o711},
		{boxspec.RedisDir, boxspec.RedisUser, 0o750},
	}
	for _, d := range dirs {
		uid, gid, err := b.Lookup(d.owner)
		if err != nil {
			return err
		}
		p := b.path(d.path)
		if err := os.MkdirAll(p, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", d.path, err)
		}
	}
	return nil
}

// cluster runs initdb on an empty data directory and makes the cluster include the image's
// settings (boxspec.PGConf). A cluster that exists is never touched beyond that include line.
func (b *Boot) cluster(ctx context.Context) error {
	if _, err := os.Stat(b.path(filepath.Join(boxspec.PGData, "PG_VERSION"))); errors.Is(err, os.ErrNotExist) {
		b.logf("no cluster in %s: initdb", boxspec.PGData)
		if err := b.must(ctx, "runuser", "-u", boxspec.PGUser, "--", boxspec.PGBinDir+"/initdb",
			"-D", boxspec.PGData, "-E", "UTF8", "--no-locale", "--auth-local=peer", "--auth-host=scram-sha-256", "-U", boxspec.PGUser); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else {
		b.logf("cluster in %s exists: keeping it", boxspec.PGData)
	}
	conf := b.path(filepath.Join(boxspec.PGData, "postgresql.conf"))
	cur, err := os.ReadFile(conf)
	if err != nil {
		return fmt.Errorf("cluster configuration: %w", err)
	}
	include := fmt.Sprintf("include_if_exists = '%s'", boxspec.PGConf)
	if strings.Contains(string(cur), include) {
		return nil
	}
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "\n# zmanim box: the image's settings (port, socket, WAL archive)\n%s\n", include)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// agent loads the CloudWatch agent's configuration from SSM and (re)starts it. The agent is
// installed on AL2023 images only; elsewhere (the local Debian box) the step says so.
func (b *Boot) agent(ctx context.Context) error {
	if _, err := os.Stat(b.path(boxspec.CWAgentCtl)); err != nil {
		b.logf("no CloudWatch agent in this image (%s): logs stay in the journal and %s", boxspec.CWAgentCtl, boxspec.LogFile)
		return nil
	}
	return b.must(ctx, boxspec.CWAgentCtl, "-a", "fetch-config", "-m", "ec2", "-s", "-c", "ssm:"+b.full(boxspec.ParamCWAgent))
}

// writeEnv writes boxspec.APIEnvFile with exactly the keys of boxspec.APIEnv, mode 0640
// root:zmanim, replaced atomically. Values are never printed.
func (b *Boot) writeEnv(ctx context.Context) error {
	if b.In.SSMPrefix == "" {
		return fmt.Errorf("%w: %s lacks %s", ErrInput, boxspec.InstanceFile, boxspec.KeySSMPrefix)
	}
	var cfg map[string]any
	values := map[string]string{}
	for _, k := range boxspec.APIEnv {
		switch k.Source {
		case boxspec.FromFixed:
			values[k.Name] = k.Value
		case boxspec.FromSecret:
			v, err := b.param(ctx, k.Param)
			if err != nil {
				return err
			}
			values[k.Name] = v
		case boxspec.FromConfig:
			if cfg == nil {
				raw, err := b.param(ctx, boxspec.ParamConfig)
				if err != nil {
					return err
				}
				if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
					return fmt.Errorf("ssm parameter %s is not JSON: %w", b.full(boxspec.ParamConfig), err)
				}
			}
			v, ok := cfg[k.Param]
			if !ok {
				return fmt.Errorf("%w: %s has no field %q (for %s); `go tool mage infra:deploy` writes it", ErrParameterMissing, b.full(boxspec.ParamConfig), k.Param, k.Name)
			}
			values[k.Name] = fmt.Sprint(v)
		}
	}
	var sb strings.Builder
	sb.WriteString("# Written by zops-box firstboot from SSM " + b.In.SSMPrefix + " on every boot; do not edit.\n")
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		line, err := envLine(n, values[n])
		if err != nil {
			return err
		}
		sb.WriteString(line)
	}
	_, gid, err := b.lookupGroup(boxspec.Group)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.path(boxspec.ConfDir), 0o755); err != nil {
		return err
	}
	if err := writeAtomic(b.path(boxspec.APIEnvFile), []byte(sb.String()), 0o640, 0, gid); err != nil {
		return err
	}
	b.logf("wrote %s: %s", boxspec.APIEnvFile, strings.Join(names, " "))
	return nil
}

func (b *Boot) lookupGroup(name string) (int, int, error) {
	if b.Lookup != nil {
		if _, gid, err := b.Lookup(name); err == nil {
			return 0, gid, nil
		}
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("group %s: %w (the image recipe creates it)", name, err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	return 0, gid, nil
}

func (b *Boot) full(name string) string { return strings.TrimSuffix(b.In.SSMPrefix, "/") + "/" + name }

func (b *Boot) param(ctx context.Context, name string) (string, error) {
	full := b.full(name)
	return ssmx.ReadSecret(ctx, b.SSM, full, fmt.Sprintf("create it (aws ssm put-parameter --name %s ...) and restart %s", full, boxspec.UnitFirstBoot))
}

// envLine renders KEY=value for systemd's EnvironmentFile=: plain when safe, else double-quoted
// with \ and " escaped. A value spanning lines is refused.
func envLine(k, v string) (string, error) {
	if strings.ContainsAny(v, "\n\r") {
		return "", fmt.Errorf("the value for %s spans lines; store it on one line", k)
	}
	if v != "" && !strings.ContainsAny(v, " \t\"'\\$`#;") {
		return k + "=" + v + "\n", nil
	}
	return k + `="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + "\"\n", nil
}

// writeAtomic writes a file through a temporary file in the same directory and a rename, so
// no reader sees half of it; uid/gid -1 keep the owner.
func writeAtomic(path string, data []byte, mode os.FileMode, uid, gid int) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if uid >= 0 || gid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			tmp.Close()
			return fmt.Errorf("chown %s: %w", path, err)
		}
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func lookupUser(name string) (int, int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("user %s: %w (the image recipe or its package creates it)", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}
