// Package recovery measures recovery from the two losses the spec fears on the single box
// (bench:recovery; migration/recovery.md is the same for an operator), on the local box: the
// image's root (internal/boxbuild) booted under real systemd (internal/nsboot) in its own
// network namespace, data volumes as loop devices, the shared twin's SSM and S3 forwarded.
//
//   - Box lost: the running box is killed outright (SIGKILL to its PID 1: no shutdown, as when
//     an instance dies); a new box booted from the image with the same data volume serves
//     again. rto_s is from the loss to the first 200 from /health; every write acknowledged
//     before the loss must be there.
//   - Volume lost: the box and its volume are gone; a new box from the image gets a blank
//     volume (first boot formats it and initialises an empty cluster) and `zops-backup
//     recover` restores the newest base backup plus every WAL segment shipped since. rto_s is
//     from the loss to /health 200 on the recovered data; rpo_s is the loss time minus the
//     newest restored write (a writer inserts a timestamped row every 100 ms throughout).
//
// Every "new box" is a fresh overlay over the image root (its own upper layer), so nothing of
// a dead box's root reaches the next one, as with a new instance from the AMI. On AWS the Auto
// Scaling group adds its detection time (EC2 health check) and the instance launch to the box
// loss; those are not measurable here and are not in rto_s.
package recovery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/shtetl/zmanim-ops/internal/fakeec2"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/nsboot"
)

// Options of a drill run.
type Options struct {
	Root string // the image's root (never written: every box boots an overlay of it)
	Work string // volumes, overlays
	Env  *config.Env
	Out  io.Writer
	// LossAfter is how long the writer runs on the second box after its base backup before
	// the volume is lost (default 150s: past the WAL timer's first run, OnBootSec=2min).
	LossAfter time.Duration
}

// Report is what the drills measured.
type Report struct {
	BoxLostRTO    time.Duration
	VolumeLostRTO time.Duration
	RPO           time.Duration
	Rows          int   // seeded cities
	AckedBoxLoss  int64 // probe rows acknowledged before the box was lost
	AckedVolLoss  int64 // ... before the volume was lost
	RestoredMaxID int64 // newest probe row after the volume recovery
	Recover       string
}

// Steps are the drill's steps in order; migration/recovery.md names each (a test keeps them
// together).
var Steps = []string{
	"prepare the twin",
	"network",
	"data volume",
	"box A: first boot on a blank volume",
	"seed and start writing",
	"lose the box",
	"box B: new box, same volume",
	"base backup",
	"keep writing",
	"lose the volume",
	"box C: new box, blank volume",
	"recover from the newest backup and WAL",
}

// Addresses of the drill's network namespace: apart from the box proof's (10.77.62.0/30), so
// both can run on one machine.
const (
	hostAddr       = "10.77.63.1"
	peerAddr       = "10.77.63.2"
	imdsPort       = 17098
	backupsBucket  = "zmanim-recovery-backups"
	releasesBucket = "zmanim-recovery-releases"
	backupHost     = "zmanim-recovery" // restic --host of every box of the drill: one box's history
)

type drill struct {
	*fakeec2.Account
	o      Options
	rep    Report
	net    *nsboot.Net
	m      *nsboot.Machine
	layer  string // the running box's overlay mount
	n      int
	stops  []func()
	loop   string
	img    string
	w      *writer
	lossAt time.Time
}

func (d *drill) logf(format string, args ...any) {
	fmt.Fprintf(d.o.Out, "recovery: "+format+"\n", args...)
}

// Run runs both drills; everything it set up is removed again.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.LossAfter <= 0 {
		o.LossAfter = 150 * time.Second
	}
	d := &drill{o: o}
	defer d.cleanup()
	fns := []func(context.Context) error{
		d.prepareTwin, d.network, d.volume, d.boxA, d.seed, d.loseBox, d.boxB, d.baseBackup, d.keepWriting, d.loseVolume, d.boxC, d.recover,
	}
	start := time.Now()
	for i, f := range fns {
		t := time.Now()
		fmt.Fprintf(o.Out, "==> %s\n", Steps[i])
		if err := f(ctx); err != nil {
			if d.m != nil {
				fmt.Fprintf(o.Out, "--- journal of the box (last lines) ---\n%s\n", tail(d.m.Journal(context.Background(), ""), 40))
			}
			return &d.rep, fmt.Errorf("recovery drill: %s: %w", Steps[i], err)
		}
		fmt.Fprintf(o.Out, "    ok (%.1fs, %.0fs in)\n", time.Since(t).Seconds(), time.Since(start).Seconds())
	}
	return &d.rep, nil
}

func (d *drill) cleanup() {
	if d.w != nil {
		d.w.stop()
	}
	d.stopBox(false)
	for i := len(d.stops) - 1; i >= 0; i-- {
		d.stops[i]()
	}
}

func (d *drill) prepareTwin(ctx context.Context) error {
	a, cleanup, err := fakeec2.OpenAccount(ctx, d.o.Env, "recovery", hostAddr, backupsBucket, releasesBucket)
	if err != nil {
		return err
	}
	d.Account = a
	d.stops = append(d.stops, cleanup)
	d.logf("twin: SSM parameters under %s, repository s3://%s/%s/restic", d.Prefix, backupsBucket, d.ID)
	return nil
}

func (d *drill) network(ctx context.Context) error {
	d.net = &nsboot.Net{Name: "zops-rec", HostIf: "zrec-h", PeerIf: "zrec-c", HostAddr: hostAddr, PeerAddr: peerAddr}
	stop, err := fakeec2.Gateway(ctx, d.o.Env, d.net, imdsPort, fakeec2.IMDS{InstanceID: "i-0rec" + fakeec2.RandHex(6), ImageID: "ami-0recovery"})
	if err != nil {
		return err
	}
	d.stops = append(d.stops, stop)
	return nil
}

// volume makes a blank sparse file on a loop device: a new EBS volume.
func (d *drill) volume(ctx context.Context) error {
	if err := os.MkdirAll(d.o.Work, 0o755); err != nil {
		return err
	}
	d.img = filepath.Join(d.o.Work, fmt.Sprintf("data-%s-%d.img", d.ID, d.n))
	loop, detach, err := fakeec2.Volume(ctx, d.img)
	if err != nil {
		return err
	}
	d.loop = loop
	d.stops = append(d.stops, detach)
	d.logf("blank data volume %s on %s", d.img, loop)
	return nil
}

// layer mounts a fresh overlay of the image root: a new instance's root disk.
func (d *drill) newLayer(ctx context.Context) (string, error) {
	d.n++
	base := filepath.Join(d.o.Work, fmt.Sprintf("box-%s-%d", d.ID, d.n))
	upper, work, merged := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "root")
	for _, p := range []string{upper, work, merged} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return "", err
		}
	}
	opt := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", d.o.Root, upper, work)
	if out, err := exec.CommandContext(ctx, "mount", "-t", "overlay", "overlay", "-o", opt, merged).CombinedOutput(); err != nil {
		return "", fmt.Errorf("overlay root: %w: %s", err, out)
	}
	d.stops = append(d.stops, func() {
		_ = exec.Command("umount", "-l", merged).Run()
		_ = os.RemoveAll(base)
	})
	return merged, nil
}

func (d *drill) instanceFile() string {
	awsURL := fmt.Sprintf("http://%s:%d", hostAddr, d.o.Env.Twin.Ports.AWS)
	return strings.Join([]string{
		"# written by the recovery drill (internal/recovery), as the CDK user data writes it on AWS",
		boxspec.KeyRegion + "=" + d.o.Env.Region,
		boxspec.KeySSMPrefix + "=" + d.Prefix,
		boxspec.KeyDataDevice + "=" + d.loop,
		boxspec.KeyDeviceWait + "=30s",
		boxspec.KeySSMEndpoint + "=" + awsURL,
		boxspec.KeyIMDSEndpoint + fmt.Sprintf("=http://%s:%d", hostAddr, imdsPort),
	}, "\n") + "\n"
}

// backupEnv is what the backup jobs need here: the twin's endpoints and keys, the drill's
// repository, one backup host for all boxes (the same box's history, as on AWS).
func (d *drill) backupEnv() []string {
	s3url := fmt.Sprintf("http://%s:%d", hostAddr, d.o.Env.Twin.Ports.S3)
	awsURL := fmt.Sprintf("http://%s:%d", hostAddr, d.o.Env.Twin.Ports.AWS)
	return []string{
		"AWS_ACCESS_KEY_ID=" + d.Secrets.S3AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + d.Secrets.S3SecretKey,
		"AWS_ENDPOINT_URL_S3=" + s3url,
		"AWS_ENDPOINT_URL_CLOUDWATCH=" + awsURL,
		"AWS_ENDPOINT_URL_SESV2=" + awsURL,
		"ZOPS_BUCKET_BACKUPS=" + backupsBucket,
		"ZOPS_BACKUP_REPOSITORY=s3:" + s3url + "/" + backupsBucket + "/" + d.ID + "/restic",
		"ZOPS_BACKUP_HOST=" + backupHost,
	}
}

func (d *drill) runUnits() map[string]string {
	conf := "# recovery drill only: the twin's endpoints and keys\n[Service]\n"
	for _, kv := range d.backupEnv() {
		conf += "Environment=" + kv + "\n"
	}
	units := map[string]string{}
	for _, u := range []string{boxspec.UnitBackup, boxspec.UnitVerify, boxspec.UnitBase, boxspec.UnitWALShip, boxspec.UnitNotify} {
		units[u+".d/recovery-drill.conf"] = conf
	}
	return units
}

// boot boots a new box (fresh overlay of the image) on the current volume.
func (d *drill) boot(ctx context.Context) (time.Time, error) {
	root, err := d.newLayer(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if err := os.WriteFile(filepath.Join(root, boxspec.InstanceFile), []byte(d.instanceFile()), 0o644); err != nil {
		return time.Time{}, err
	}
	start := time.Now()
	m, err := nsboot.Boot(ctx, nsboot.Options{Root: root, Hostname: "zmanim-box", Net: d.net, RunUnits: d.runUnits()})
	if err != nil {
		return start, err
	}
	d.m, d.layer = m, root
	return start, nil
}

// stopBox ends the running box: kill is a loss (SIGKILL to PID 1, nothing shuts down).
func (d *drill) stopBox(kill bool) time.Time {
	if d.m == nil {
		return time.Now()
	}
	if kill {
		_ = syscall.Kill(d.m.PID(), syscall.SIGKILL)
	}
	t := time.Now()
	if kill {
		<-d.m.Done()
	}
	d.m.Stop(context.Background())
	d.m = nil
	return t
}

func (d *drill) health(ctx context.Context, c *http.Client) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d/health", peerAddr, boxspec.APIPort), nil)
	req.Header.Set(d.o.Env.API.OriginVerifyHeader, d.Origin)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (d *drill) waitHealthy(ctx context.Context, timeout time.Duration) (time.Time, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		code, err := d.health(ctx, c)
		if err == nil && code == http.StatusOK {
			return time.Now(), nil
		}
		last = fmt.Sprintf("%d %v", code, err)
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-d.m.Done():
			return time.Time{}, errors.New("the box stopped")
		case <-time.After(25 * time.Millisecond):
		}
	}
	return time.Time{}, fmt.Errorf("/health not 200 within %s (last: %s)", timeout, last)
}

func (d *drill) psql(ctx context.Context, sql string) (string, error) {
	out, err := d.m.Exec(ctx, "runuser", "-u", boxspec.PGUser, "--", boxspec.PGBinDir+"/psql", "-h", boxspec.PGSocketDir, "-d", boxspec.Database, "-v", "ON_ERROR_STOP=1", "-Atc", sql)
	return strings.TrimSpace(out), err
}

func (d *drill) boxA(ctx context.Context) error {
	start, err := d.boot(ctx)
	if err != nil {
		return err
	}
	at, err := d.waitHealthy(ctx, 3*time.Minute)
	if err != nil {
		return err
	}
	d.logf("box A: /health 200 %.1fs after boot (first boot formatted the blank volume)", at.Sub(start).Seconds())
	return nil
}

func (d *drill) seed(ctx context.Context) error {
	if out, err := d.m.Exec(ctx, "systemd-run", "--wait", "--pipe", "--quiet", "-p", "User="+boxspec.User, "-p", "EnvironmentFile="+boxspec.APIEnvFile,
		boxspec.APIPath, "seed", "synthetic:5000"); err != nil {
		return fmt.Errorf("seed: %w\n%s", err, out)
	}
	n, err := d.psql(ctx, "SELECT count(*) FROM cities")
	if err != nil {
		return err
	}
	d.rep.Rows, _ = strconv.Atoi(n)
	if _, err := d.psql(ctx, "CREATE TABLE recovery_probe (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())"); err != nil {
		return err
	}
	if d.w, err = d.startWriter(ctx); err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	d.logf("data: %d cities; writer inserting a timestamped row every 100 ms (%d acknowledged so far)", d.rep.Rows, d.w.acked())
	return nil
}

func (d *drill) loseBox(ctx context.Context) error {
	d.rep.AckedBoxLoss = d.w.acked()
	d.lossAt = d.stopBox(true)
	d.w.stop()
	d.logf("box A killed (SIGKILL to its PID 1) with %d rows acknowledged", d.rep.AckedBoxLoss)
	return nil
}

func (d *drill) boxB(ctx context.Context) error {
	if _, err := d.boot(ctx); err != nil {
		return err
	}
	at, err := d.waitHealthy(ctx, 3*time.Minute)
	if err != nil {
		return err
	}
	d.rep.BoxLostRTO = at.Sub(d.lossAt)
	maxID, err := d.psql(ctx, "SELECT coalesce(max(id), 0) FROM recovery_probe")
	if err != nil {
		return err
	}
	n, _ := strconv.ParseInt(maxID, 10, 64)
	cities, _ := d.psql(ctx, "SELECT count(*) FROM cities")
	fb := d.m.Journal(ctx, boxspec.UnitFirstBoot)
	if strings.Contains(fb, "is blank") {
		return fmt.Errorf("the new box formatted the data volume:\n%s", fb)
	}
	d.logf("box B: same volume, /health 200 %.1fs after the loss (box_lost rto_s); %s cities, newest probe row %d (acknowledged before the loss: %d)",
		d.rep.BoxLostRTO.Seconds(), cities, n, d.rep.AckedBoxLoss)
	if n < d.rep.AckedBoxLoss || cities != strconv.Itoa(d.rep.Rows) {
		return fmt.Errorf("data lost with the box: newest row %d < acknowledged %d, or cities %s != %d", n, d.rep.AckedBoxLoss, cities, d.rep.Rows)
	}
	return d.checkLogFile(ctx)
}

// checkLogFile: the file the CloudWatch agent ships (the journal export of the box's units,
// packer/recipe/60-logs.sh) holds lines of the API, PostgreSQL and Redis.
func (d *drill) checkLogFile(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	var missing []string
	for {
		out, _ := d.m.Exec(ctx, "cat", boxspec.LogFile)
		missing = missing[:0]
		// The processes' own lines (syslog identifier and pid), not systemd's about their units.
		for name, marks := range map[string][]string{"API": {"zmanim-api["}, "PostgreSQL": {"postgres["}, "Redis": {"redis-server[", "valkey-server["}} {
			found := false
			for _, m := range marks {
				found = found || strings.Contains(out, m)
			}
			if !found {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			d.logf("logs: %s holds the API's, PostgreSQL's and Redis's lines (%d lines), the file the CloudWatch agent ships", boxspec.LogFile, strings.Count(out, "\n"))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s lacks lines of %v (the CloudWatch agent would ship nothing of them)", boxspec.LogFile, missing)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (d *drill) baseBackup(ctx context.Context) error {
	var err error
	if d.w, err = d.startWriter(ctx); err != nil {
		return err
	}
	if out, err := d.m.Systemctl(ctx, "start", boxspec.UnitBase); err != nil {
		return fmt.Errorf("%w\n%s\n%s", err, out, tail(d.m.Journal(ctx, boxspec.UnitBase), 30))
	}
	d.logf("base backup: %s", lastLine(d.m.Journal(ctx, boxspec.UnitBase)))
	return nil
}

func (d *drill) keepWriting(ctx context.Context) error {
	d.logf("writing for %s (the box's own WAL timer ships the archive: OnBootSec=2min, then every backup.wal_interval; archive_timeout=60s)", d.o.LossAfter)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d.o.LossAfter):
	}
	ships := strings.Count(d.m.Journal(ctx, boxspec.UnitWALShip), "Finished "+boxspec.UnitWALShip)
	d.logf("%s ran %d time(s) on this box", boxspec.UnitWALShip, ships)
	return nil
}

func (d *drill) loseVolume(ctx context.Context) error {
	d.rep.AckedVolLoss = d.w.acked()
	d.lossAt = d.stopBox(true)
	d.w.stop()
	if out, err := exec.CommandContext(ctx, "losetup", "-d", d.loop).CombinedOutput(); err != nil {
		return fmt.Errorf("losetup -d %s: %w: %s", d.loop, err, out)
	}
	_ = os.Remove(d.img)
	d.logf("box B killed and its volume deleted, %d rows acknowledged", d.rep.AckedVolLoss)
	return nil
}

func (d *drill) boxC(ctx context.Context) error {
	if err := d.volume(ctx); err != nil {
		return err
	}
	if _, err := d.boot(ctx); err != nil {
		return err
	}
	if _, err := d.waitHealthy(ctx, 3*time.Minute); err != nil {
		return err
	}
	fb := d.m.Journal(ctx, boxspec.UnitFirstBoot)
	if !strings.Contains(fb, "is blank") {
		return fmt.Errorf("first boot did not format the new blank volume:\n%s", tail(fb, 20))
	}
	d.logf("box C: blank volume formatted, empty cluster, services up")
	return nil
}

func (d *drill) recover(ctx context.Context) error {
	// The twin's keys go through a root-only file of this box, never the command line.
	const envFile = "/etc/zops-recovery-drill.env"
	if err := os.WriteFile(filepath.Join(d.layer, envFile), []byte(strings.Join(d.backupEnv(), "\n")+"\n"), 0o600); err != nil {
		return err
	}
	args := []string{"systemd-run", "--wait", "--pipe", "--quiet", "-p", "EnvironmentFile=-" + boxspec.InstanceFile, "-p", "EnvironmentFile=" + envFile,
		"-E", "ZOPS_ENV=prod", "-E", "ZOPS_BACKUP_NOTIFY=0", boxspec.ZopsBackup, "recover"}
	out, err := d.m.Exec(ctx, args...)
	d.rep.Recover = lastLine(out)
	if err != nil {
		return fmt.Errorf("zops-backup recover: %w\n%s", err, tail(out, 30))
	}
	at, err := d.waitHealthy(ctx, 3*time.Minute)
	if err != nil {
		return err
	}
	d.rep.VolumeLostRTO = at.Sub(d.lossAt)
	row, err := d.psql(ctx, "SELECT max(id) || ' ' || extract(epoch FROM max(at)) FROM recovery_probe")
	if err != nil {
		return err
	}
	var newestAt float64
	if _, err := fmt.Sscanf(row, "%d %f", &d.rep.RestoredMaxID, &newestAt); err != nil {
		return fmt.Errorf("newest restored row %q: %w", row, err)
	}
	newest := time.Unix(0, int64(newestAt*1e9))
	d.rep.RPO = d.lossAt.Sub(newest)
	cities, _ := d.psql(ctx, "SELECT count(*) FROM cities")
	d.logf("recover: %s", d.rep.Recover)
	d.logf("box C: recovered, /health 200 %.1fs after the volume loss (volume_lost rto_s); %s cities; newest restored row %d written %.1fs before the loss (rpo_s), %d rows acknowledged by then",
		d.rep.VolumeLostRTO.Seconds(), cities, d.rep.RestoredMaxID, d.rep.RPO.Seconds(), d.rep.AckedVolLoss)
	if cities != strconv.Itoa(d.rep.Rows) {
		return fmt.Errorf("recovered %s cities, want %d", cities, d.rep.Rows)
	}
	return nil
}

// writer inserts a timestamped row every 100 ms through one psql session in the box and
// counts the rows PostgreSQL acknowledged (psql prints each RETURNING id once committed).
type writer struct {
	cancel context.CancelFunc
	mu     sync.Mutex
	last   int64
	done   chan struct{}
}

func (w *writer) acked() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *writer) stop() {
	w.cancel()
	<-w.done
}

func (d *drill) startWriter(ctx context.Context) (*writer, error) {
	wctx, cancel := context.WithCancel(ctx)
	cmd := d.m.Command(wctx, "runuser", "-u", boxspec.PGUser, "--", boxspec.PGBinDir+"/psql", "-h", boxspec.PGSocketDir, "-d", boxspec.Database, "-At", "-q")
	in, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	w := &writer{cancel: cancel, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(outp)
		for sc.Scan() {
			if id, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64); err == nil {
				w.mu.Lock()
				w.last = id
				w.mu.Unlock()
			}
		}
	}()
	go func() {
		defer close(w.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				in.Close()
				_ = cmd.Wait()
				return
			case <-t.C:
				if _, err := io.WriteString(in, "INSERT INTO recovery_probe DEFAULT VALUES RETURNING id;\n"); err != nil {
					_ = cmd.Wait()
					<-wctx.Done()
					return
				}
			}
		}
	}()
	return w, nil
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
