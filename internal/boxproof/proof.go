// Package boxproof proves a locally built box: it boots the root under real systemd
// (internal/nsboot) in its own network namespace, with a loop-mounted sparse file as the data
// volume, a fake instance metadata service (IMDSv2) and the shared twin's SSM (kumo) and S3
// (versitygw) forwarded to the namespace's gateway address, then checks what production must
// do (issue 13, TC-7.3):
//
//  1. first boot formats the blank volume, writes api.env from SSM and starts zmanim.target;
//     /health answers through the box's own socket within 5 s of zmanim-api.service starting
//  2. every unit of the image passes systemd-analyze verify inside the booted machine
//  3. `zops-backup run` (the zops-backup.service unit, production configuration ZOPS_ENV=prod)
//     writes a snapshot to S3 and puts Zmanim/Backup BackupSucceeded
//  4. `zops-box deploy` switches the API to a new release while load runs against the box's
//     socket, with no failed request
//  5. a second boot with the same volume, first with a missing SSM parameter (first boot fails
//     and its journal names the parameter; nothing starts), then fixed and first boot restarted:
//     the volume is never formatted and the row count is unchanged
//
// Network: the machine has its own network namespace (veth 10.77.62.1 <-> .2), so its
// PostgreSQL (5432), Redis (6379) and API (8080) never clash with the host's or the twin's
// (17432, 17379); the twin's S3 and kumo listen on the host's 127.0.0.1 only, so the proof
// forwards 10.77.62.1:17070/17071 to them and serves IMDS on 10.77.62.1:17099.
package boxproof

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/shtetl/zmanim-ops/internal/fakeec2"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/sys/unix"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/nsboot"
	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// Options of a proof.
type Options struct {
	Root string // the built root (it is booted in place: the image's first boot)
	Work string // scratch: the data volume file, the second API build
	Env  *config.Env
	Out  io.Writer
	// Quick measures boots only (bench:box): the first boot on a blank volume, then a boot of
	// the same root on the now formatted volume (a new box on an existing data volume, the
	// ami rollout's case).
	Quick bool
}

// Report holds what the proof measured.
type Report struct {
	BootToHealthy    time.Duration // Boot() to the first 200 from /health (first boot, blank volume)
	ServiceToHealthy time.Duration // zmanim-api.service leaving inactive to that 200
	RebootToHealthy  time.Duration // Quick: the same for a boot on the existing volume
	Rows             int
	Snapshot         string
	DeployRequests   int64
	DeployFailures   int64
	SecondBootRows   int
}

// The namespace's addresses and the forwarded ports.
const (
	hostAddr = "10.77.62.1"
	peerAddr = "10.77.62.2"
	imdsPort = 17099
	// Buckets of the proof on the twin's S3 (its own, so nothing of the twin's is touched).
	backupsBucket  = "zmanim-boxproof-backups"
	releasesBucket = "zmanim-boxproof-releases"
)

type proof struct {
	*fakeec2.Account
	o      Options
	rep    Report
	loop   string
	net    *nsboot.Net
	m      *nsboot.Machine
	stops  []func()
	v1, v2 string
}

func (p *proof) logf(format string, args ...any) {
	fmt.Fprintf(p.o.Out, "proof: "+format+"\n", args...)
}

// Run runs the proof and returns what it measured; everything it set up is removed again.
func Run(ctx context.Context, o Options) (*Report, error) {
	p := &proof{o: o}
	defer p.cleanup()
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"prepare the twin (buckets, SSM parameters)", p.prepareTwin},
		{"data volume (sparse file on a loop device)", p.volume},
		{"network, forwards to the twin, fake IMDS", p.network},
		{"first boot on a blank volume", p.firstBoot},
	}
	if !o.Quick {
		steps = append(steps, []struct {
			name string
			f    func(context.Context) error
		}{
			{"every unit verifies", p.verifyUnits},
			{"seed data", p.seed},
			{"zops-backup run (production configuration)", p.backup},
			{"zops-box deploy under load", p.deploy},
			{"second boot: missing SSM parameter, then fixed, same volume", p.secondBoot},
		}...)
	}
	for _, s := range steps {
		if err := s.f(ctx); err != nil {
			if p.m != nil {
				fmt.Fprintf(o.Out, "--- journal of the box (last lines) ---\n%s\n", tail(p.m.Journal(context.Background(), ""), 40))
			}
			return &p.rep, fmt.Errorf("box proof: %s: %w", s.name, err)
		}
	}
	return &p.rep, nil
}

func (p *proof) cleanup() {
	for i := len(p.stops) - 1; i >= 0; i-- {
		p.stops[i]()
	}
}

func (p *proof) prepareTwin(ctx context.Context) error {
	a, cleanup, err := fakeec2.OpenAccount(ctx, p.o.Env, "boxproof", hostAddr, backupsBucket, releasesBucket)
	if err != nil {
		return err
	}
	p.Account = a
	p.stops = append(p.stops, cleanup)
	// This run's repository and release go again at the end: the buckets are shared by runs.
	p.stops = append(p.stops, func() {
		p.deletePrefix(backupsBucket, p.ID+"/")
		p.deletePrefix(releasesBucket, "releases/v2-"+p.ID+"/")
	})
	p.logf("twin: SSM parameters under %s (kumo), buckets %s and %s (versitygw)", p.Prefix, backupsBucket, releasesBucket)
	return nil
}

func (p *proof) deletePrefix(bucket, prefix string) {
	ctx := context.Background()
	var token *string
	for {
		out, err := p.Clients.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), ContinuationToken: token})
		if err != nil {
			return
		}
		for _, o := range out.Contents {
			_, _ = p.Clients.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		}
		if !aws.ToBool(out.IsTruncated) {
			return
		}
		token = out.NextContinuationToken
	}
}

func (p *proof) volume(ctx context.Context) error {
	if err := os.MkdirAll(p.o.Work, 0o755); err != nil {
		return err
	}
	img := filepath.Join(p.o.Work, "data-volume.img")
	loop, detach, err := fakeec2.Volume(ctx, img)
	if err != nil {
		return err
	}
	p.loop = loop
	p.stops = append(p.stops, detach)
	p.logf("data volume: %s on %s (2 GiB sparse, blank)", img, p.loop)
	return nil
}

func (p *proof) network(ctx context.Context) error {
	p.net = &nsboot.Net{Name: "zops-box", HostIf: "zbox-h", PeerIf: "zbox-c", HostAddr: hostAddr, PeerAddr: peerAddr}
	stop, err := fakeec2.Gateway(ctx, p.o.Env, p.net, imdsPort, fakeec2.IMDS{InstanceID: "i-0b0x" + fakeec2.RandHex(6), ImageID: "ami-0b0xproof"})
	if err != nil {
		return err
	}
	p.stops = append(p.stops, stop)
	tw := p.o.Env.Twin
	p.logf("network namespace %s: box %s, gateway %s forwards :%d (S3) :%d (SSM, CloudWatch) :%d (JWKS) to the twin, IMDSv2 on :%d", p.net.Name, peerAddr, hostAddr, tw.Ports.S3, tw.Ports.AWS, tw.Ports.JWT, imdsPort)
	return nil
}

// instanceFile is what the CDK user data writes on AWS; here the device path and the
// endpoints of the twin stand in for the volume id and AWS.
func (p *proof) instanceFile() string {
	aws := fmt.Sprintf("http://%s:%d", hostAddr, p.o.Env.Twin.Ports.AWS)
	return strings.Join([]string{
		"# written by the box proof (internal/boxproof), as the CDK user data writes it on AWS",
		boxspec.KeyRegion + "=" + p.o.Env.Region,
		boxspec.KeySSMPrefix + "=" + p.Prefix,
		boxspec.KeyDataDevice + "=" + p.loop,
		boxspec.KeyDeviceWait + "=30s",
		boxspec.KeySSMEndpoint + "=" + aws,
		boxspec.KeyIMDSEndpoint + fmt.Sprintf("=http://%s:%d", hostAddr, imdsPort),
	}, "\n") + "\n"
}

// runUnits are this boot's runtime drop-ins (never in the image): the backup jobs reach the
// twin's S3 with its keys (restic does not read IMDS at a custom address) and CloudWatch/SES at
// kumo, and use this proof's repository.
func (p *proof) runUnits() map[string]string {
	aws := fmt.Sprintf("http://%s:%d", hostAddr, p.o.Env.Twin.Ports.AWS)
	s3 := fmt.Sprintf("http://%s:%d", hostAddr, p.o.Env.Twin.Ports.S3)
	conf := "# box proof only: the twin's endpoints and keys\n[Service]\n" + strings.Join([]string{
		"Environment=AWS_ACCESS_KEY_ID=" + p.Secrets.S3AccessKey,
		"Environment=AWS_SECRET_ACCESS_KEY=" + p.Secrets.S3SecretKey,
		"Environment=AWS_ENDPOINT_URL_S3=" + s3,
		"Environment=AWS_ENDPOINT_URL_CLOUDWATCH=" + aws,
		"Environment=AWS_ENDPOINT_URL_SESV2=" + aws,
		"Environment=ZOPS_BUCKET_BACKUPS=" + backupsBucket,
		"Environment=ZOPS_BACKUP_REPOSITORY=s3:" + s3 + "/" + backupsBucket + "/" + p.ID + "/restic",
		"Environment=ZOPS_BACKUP_HOST=zmanim-boxproof",
	}, "\n") + "\n"
	units := map[string]string{}
	for _, u := range []string{boxspec.UnitBackup, boxspec.UnitVerify, boxspec.UnitBase, boxspec.UnitWALShip, boxspec.UnitNotify} {
		units[u+".d/box-proof.conf"] = conf
	}
	return units
}

func (p *proof) boot(ctx context.Context) (time.Time, error) {
	if err := os.WriteFile(filepath.Join(p.o.Root, boxspec.InstanceFile), []byte(p.instanceFile()), 0o644); err != nil {
		return time.Time{}, err
	}
	start := time.Now()
	m, err := nsboot.Boot(ctx, nsboot.Options{Root: p.o.Root, Hostname: "zmanim-box", Net: p.net, RunUnits: p.runUnits()})
	if err != nil {
		return start, err
	}
	p.m = m
	return start, nil
}

func (p *proof) stopMachine() {
	if p.m != nil {
		p.m.Stop(context.Background())
		p.m = nil
	}
}

func (p *proof) healthURL() string {
	return fmt.Sprintf("http://%s:%d/health", peerAddr, boxspec.APIPort)
}

// health GETs /health through the box's socket with the origin-verify header.
func (p *proof) health(ctx context.Context, c *http.Client) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.healthURL(), nil)
	req.Header.Set(p.o.Env.API.OriginVerifyHeader, p.Origin)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var h struct{ Version string }
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return resp.StatusCode, h.Version, nil
}

func monotonicMicros() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano() / 1000
}

// waitHealthy polls /health until 200 and returns the host's monotonic time of that answer.
func (p *proof) waitHealthy(ctx context.Context, timeout time.Duration) (int64, string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		code, v, err := p.health(ctx, c)
		if err == nil && code == http.StatusOK {
			return monotonicMicros(), v, nil
		}
		last = fmt.Sprintf("%d %v", code, err)
		select {
		case <-ctx.Done():
			return 0, "", ctx.Err()
		case <-p.m.Done():
			return 0, "", errors.New("the machine stopped")
		case <-time.After(25 * time.Millisecond):
		}
	}
	return 0, "", fmt.Errorf("/health not 200 within %s (last: %s)", timeout, last)
}

func (p *proof) show(ctx context.Context, unit, prop string) string {
	out, _ := p.m.Systemctl(ctx, "show", "-p", prop, "--value", unit)
	return strings.TrimSpace(out)
}

func (p *proof) firstBoot(ctx context.Context) error {
	start, err := p.boot(ctx)
	if err != nil {
		return err
	}
	healthyAt, v, err := p.waitHealthy(ctx, 3*time.Minute)
	if err != nil {
		fmt.Fprintf(p.o.Out, "--- zops-firstboot ---\n%s\n", p.m.Journal(ctx, boxspec.UnitFirstBoot))
		return err
	}
	p.rep.BootToHealthy = time.Since(start)
	p.v1 = v
	svcStart, _ := strconv.ParseInt(p.show(ctx, boxspec.UnitAPI, "InactiveExitTimestampMonotonic"), 10, 64)
	if svcStart > 0 {
		p.rep.ServiceToHealthy = time.Duration(healthyAt-svcStart) * time.Microsecond
	}
	st, err := p.m.WaitRunning(ctx, time.Minute)
	if err != nil {
		failed, _ := p.m.Systemctl(ctx, "--failed")
		jobs, _ := p.m.Systemctl(ctx, "list-jobs")
		return fmt.Errorf("%w\nfailed units:\n%s\njobs:\n%s", err, failed, jobs)
	}
	fb := p.m.Journal(ctx, boxspec.UnitFirstBoot)
	if !strings.Contains(fb, "is blank: creating xfs") {
		return fmt.Errorf("first boot did not format the blank volume:\n%s", fb)
	}
	for _, u := range append(append([]string{}, boxspec.Services...), boxspec.Timers...) {
		if s := p.show(ctx, u, "ActiveState"); s != "active" {
			return fmt.Errorf("%s is %s after boot:\n%s", u, s, p.m.Journal(ctx, u))
		}
	}
	p.logf("boot 1: systemd %s; %s formatted the blank volume and wrote %s; active: %s", st, boxspec.UnitFirstBoot, boxspec.APIEnvFile, strings.Join(append(append([]string{}, boxspec.Services...), boxspec.Timers...), " "))
	p.logf("boot 1: GET %s -> 200 %s, %.2fs after boot, %.2fs after %s started (TC-7.3: <= 5 s)", p.healthURL(), v, p.rep.BootToHealthy.Seconds(), p.rep.ServiceToHealthy.Seconds(), boxspec.UnitAPI)
	if p.rep.ServiceToHealthy > 5*time.Second {
		return fmt.Errorf("TC-7.3: /health answered %.2fs after %s started, want <= 5 s", p.rep.ServiceToHealthy.Seconds(), boxspec.UnitAPI)
	}
	env, _ := p.m.Exec(ctx, "stat", "-c", "%a %U:%G", boxspec.APIEnvFile)
	keys, _ := p.m.Exec(ctx, "sh", "-c", "cut -d= -f1 "+boxspec.APIEnvFile+" | grep -v '^#' | tr '\\n' ' '")
	p.logf("boot 1: %s mode %s, keys %s", boxspec.APIEnvFile, strings.TrimSpace(env), strings.TrimSpace(keys))
	if strings.TrimSpace(env) != "640 root:"+boxspec.Group {
		return fmt.Errorf("%s is %s, want 640 root:%s", boxspec.APIEnvFile, env, boxspec.Group)
	}
	if p.o.Quick {
		p.stopMachine()
		start, err := p.boot(ctx)
		if err != nil {
			return err
		}
		if _, _, err := p.waitHealthy(ctx, 3*time.Minute); err != nil {
			return err
		}
		p.rep.RebootToHealthy = time.Since(start)
		p.logf("boot 2 (same volume): /health 200 %.2fs after boot", p.rep.RebootToHealthy.Seconds())
		p.stopMachine()
	}
	return nil
}

func (p *proof) verifyUnits(ctx context.Context) error {
	args := []string{"systemd-analyze", "verify", "--man=no"}
	n := 0
	for _, u := range boxspec.Units() {
		if strings.HasSuffix(u, "@.service") {
			u = strings.TrimSuffix(u, "@.service") + "@zops-backup.service.service"
		}
		args = append(args, u)
		n++
	}
	out, err := p.m.Exec(ctx, args...)
	if err != nil || strings.TrimSpace(out) != "" {
		return fmt.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	p.logf("systemd-analyze verify: %d units of the image clean (in the booted box)", n)
	return nil
}

const countSQL = "SELECT count(*) FROM cities"

func (p *proof) rows(ctx context.Context) (int, error) {
	out, err := p.m.Exec(ctx, "runuser", "-u", boxspec.PGUser, "--", boxspec.PGBinDir+"/psql", "-h", boxspec.PGSocketDir, "-d", boxspec.Database, "-Atc", countSQL)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

func (p *proof) seed(ctx context.Context) error {
	// As the API unit runs: its user, its environment file.
	if out, err := p.m.Exec(ctx, "systemd-run", "--wait", "--pipe", "--quiet", "-p", "User="+boxspec.User, "-p", "EnvironmentFile="+boxspec.APIEnvFile,
		boxspec.APIPath, "seed", "synthetic:5000"); err != nil {
		return fmt.Errorf("seed: %w\n%s", err, out)
	}
	n, err := p.rows(ctx)
	if err != nil {
		return err
	}
	p.rep.Rows = n
	p.logf("data: %d cities in PostgreSQL on %s (seeded as %s through the socket)", n, boxspec.PGData, boxspec.User)
	return nil
}

func (p *proof) backup(ctx context.Context) error {
	t := time.Now()
	if out, err := p.m.Systemctl(ctx, "start", boxspec.UnitBackup); err != nil {
		return fmt.Errorf("%w\n%s\n%s", err, out, tail(p.m.Journal(ctx, boxspec.UnitBackup), 30))
	}
	j := p.m.Journal(ctx, boxspec.UnitBackup)
	if !strings.Contains(j, "BackupSucceeded=1") {
		return fmt.Errorf("the backup did not put its metric:\n%s", tail(j, 20))
	}
	list, err := p.Clients.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(backupsBucket), Prefix: aws.String(p.ID + "/restic/snapshots/")})
	if err != nil {
		return err
	}
	if len(list.Contents) == 0 {
		return fmt.Errorf("no snapshot under s3://%s/%s/restic/snapshots/", backupsBucket, p.ID)
	}
	p.rep.Snapshot = filepath.Base(aws.ToString(list.Contents[0].Key))
	cw := cloudwatch.NewFromConfig(p.Clients.Config, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(awsx.TwinEndpoints(p.o.Env).AWS) })
	ms, err := cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("Zmanim/Backup"), MetricName: aws.String("BackupSucceeded"),
		Dimensions: []cwtypes.DimensionFilter{{Name: aws.String("Env"), Value: aws.String("prod")}}})
	if err != nil || len(ms.Metrics) == 0 {
		return fmt.Errorf("kumo has no Zmanim/Backup BackupSucceeded Env=prod: %v", err)
	}
	// The file the CloudWatch agent tails on AWS is really written (the journal export).
	logLines, _ := p.m.Exec(ctx, "sh", "-c", "grep -c -e 'zops-backup' -e 'firstboot:' "+boxspec.LogFile+" || true")
	n, _ := strconv.Atoi(strings.TrimSpace(logLines))
	if n == 0 {
		return fmt.Errorf("%s (the CloudWatch agent's file) has no line of first boot or the backup", boxspec.LogFile)
	}
	p.logf("logs: %s holds %d lines of first boot and the backup (the file the CloudWatch agent tails)", boxspec.LogFile, n)
	p.logf("backup: %s (zops-backup run, ZOPS_ENV=prod) in %.1fs: %d snapshot(s) in s3://%s/%s/restic, metric Zmanim/Backup BackupSucceeded Env=prod in CloudWatch (kumo)",
		boxspec.UnitBackup, time.Since(t).Seconds(), len(list.Contents), backupsBucket, p.ID)
	return nil
}

// deploy publishes a second API build as a release and runs `zops-box deploy` inside the box
// while workers hit the box's socket; every request must succeed.
func (p *proof) deploy(ctx context.Context) error {
	p.v2 = "v2-" + p.ID
	bin := filepath.Join(p.o.Work, "zmanim-api-"+p.v2)
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+p.v2, "-o", bin, "./examples/zmanim-api")
	build.Dir = config.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", p.v2, err, out)
	}
	defer os.Remove(bin)
	if err := p.publish(ctx, bin); err != nil {
		return err
	}
	var reqs, fails atomic.Int64
	var firstErr atomic.Value
	lctx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for lctx.Err() == nil {
				code, _, err := p.health(lctx, c)
				if lctx.Err() != nil {
					return
				}
				reqs.Add(1)
				if err != nil || code != http.StatusOK {
					fails.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v", code, err))
				}
			}
		}()
	}
	time.Sleep(time.Second) // load before the switch
	s3url := fmt.Sprintf("http://%s:%d", hostAddr, p.o.Env.Twin.Ports.S3)
	creds := []string{"env", "AWS_ACCESS_KEY_ID=" + p.Secrets.S3AccessKey, "AWS_SECRET_ACCESS_KEY=" + p.Secrets.S3SecretKey, "AWS_ENDPOINT_URL_S3=" + s3url}
	// The release's stage step, as `mage release` sends it over Run Command: the new version
	// installed side by side while the current one serves; the deploy then only switches.
	inst, err := p.m.Exec(ctx, append(creds, boxspec.InstallArgv(releasesBucket, p.o.Env.Region, 10, p.v2)...)...)
	if err != nil {
		stopLoad()
		wg.Wait()
		return fmt.Errorf("zops-box install: %w", err)
	}
	p.logf("deploy: zops-box install %s inside the box: %s", p.v2, strings.TrimSpace(lastLine(inst)))
	out, err := p.m.Exec(ctx, append(creds, boxspec.ZopsBox, "deploy", "--bucket", releasesBucket, "--region", p.o.Env.Region, p.v2)...)
	time.Sleep(time.Second) // load after the switch
	stopLoad()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("zops-box deploy: %w", err)
	}
	p.rep.DeployRequests, p.rep.DeployFailures = reqs.Load(), fails.Load()
	_, v, herr := p.health(ctx, &http.Client{Timeout: 2 * time.Second})
	p.logf("deploy: zops-box deploy %s inside the box: %s", p.v2, strings.TrimSpace(lastLine(out)))
	p.logf("deploy: %d requests on the box's socket during the switch, %d failed; /health now reports %s", p.rep.DeployRequests, p.rep.DeployFailures, v)
	if p.rep.DeployFailures > 0 {
		return fmt.Errorf("%d of %d requests failed during the switch (first: %v)", p.rep.DeployFailures, p.rep.DeployRequests, firstErr.Load())
	}
	if herr != nil || v != p.v2 {
		return fmt.Errorf("after deploy /health reports %q (%v), want %s", v, herr, p.v2)
	}
	if !strings.Contains(out, "already installed") {
		return fmt.Errorf("zops-box deploy installed %s again after zops-box install had:\n%s", p.v2, out)
	}
	return nil
}

// publish puts the binary and its manifest into the releases bucket the way `mage release`
// does (binary first, manifest last).
func (p *proof) publish(ctx context.Context, bin string) error {
	st := &onbox.S3Store{Client: p.Clients.S3, Name: releasesBucket}
	sum, size, err := onbox.FileSHA256(bin)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	arch := runtime.GOARCH
	a := onbox.Artifact{Name: boxspec.APIBinary, OS: "linux", Arch: arch, Key: onbox.ArtifactKey(p.v2, boxspec.APIBinary, arch), SHA256: sum, Size: size}
	if _, err := st.Put(ctx, a.Key, b, onbox.Cond{IfAbsent: true}); err != nil {
		return err
	}
	m := onbox.Manifest{Version: p.v2, Commit: strings.Repeat("0", 40), GoVersion: "box-proof", BuiltAt: time.Now().UTC(), BuiltBy: "box proof", Artifacts: []onbox.Artifact{a}}
	mb, _ := json.Marshal(m)
	_, err = st.Put(ctx, onbox.ManifestKey(p.v2), mb, onbox.Cond{IfAbsent: true})
	return err
}

func (p *proof) secondBoot(ctx context.Context) error {
	p.stopMachine()
	p.logf("boot 1: stopped (systemctl poweroff semantics: services stopped in order)")
	// A missing parameter: first boot must fail naming it, and nothing of the box starts.
	missing := p.Prefix + "/" + boxspec.ParamOriginVerify
	if _, err := p.Clients.SSM.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(missing)}); err != nil {
		return err
	}
	if _, err := p.boot(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for p.show(ctx, boxspec.UnitFirstBoot, "ActiveState") != "failed" {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not fail without %s:\n%s", boxspec.UnitFirstBoot, missing, p.m.Journal(ctx, boxspec.UnitFirstBoot))
		}
		time.Sleep(100 * time.Millisecond)
	}
	j := p.m.Journal(ctx, boxspec.UnitFirstBoot)
	if !strings.Contains(j, missing) {
		return fmt.Errorf("the journal of %s does not name %s:\n%s", boxspec.UnitFirstBoot, missing, j)
	}
	if s := p.show(ctx, boxspec.UnitAPI, "ActiveState"); s == "active" {
		return fmt.Errorf("%s is active although first boot failed", boxspec.UnitAPI)
	}
	p.logf("boot 2: without %s: %s failed, its journal says: %s", missing, boxspec.UnitFirstBoot, strings.TrimSpace(lineWith(j, missing)))
	if err := p.PutParam(ctx, boxspec.ParamOriginVerify, p.Origin, ssmtypes.ParameterTypeSecureString); err != nil {
		return err
	}
	if out, err := p.m.Systemctl(ctx, "restart", boxspec.UnitFirstBoot); err != nil {
		return fmt.Errorf("%w\n%s\n%s", err, out, p.m.Journal(ctx, boxspec.UnitFirstBoot))
	}
	if _, v, err := p.waitHealthy(ctx, 2*time.Minute); err != nil {
		return err
	} else if v != p.v2 {
		return fmt.Errorf("after the reboot /health reports %s, want %s", v, p.v2)
	}
	j = p.m.Journal(ctx, boxspec.UnitFirstBoot)
	if strings.Contains(j, "is blank") || !strings.Contains(j, "holds data") {
		return fmt.Errorf("second boot formatted or did not recognise the volume:\n%s", j)
	}
	n, err := p.rows(ctx)
	if err != nil {
		return err
	}
	p.rep.SecondBootRows = n
	p.logf("boot 2: parameter restored, %s restarted: volume kept (%s), %d cities (before: %d), /health 200 %s", boxspec.UnitFirstBoot, strings.TrimSpace(lineWith(j, "holds data")), n, p.rep.Rows, p.v2)
	if n != p.rep.Rows {
		return fmt.Errorf("row count changed across the reboot: %d, was %d", n, p.rep.Rows)
	}
	p.stopMachine()
	return nil
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			if i := strings.Index(l, "firstboot:"); i >= 0 {
				return l[i:]
			}
			return l
		}
	}
	return ""
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return l[len(l)-1]
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
