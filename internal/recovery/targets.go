package recovery

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/awsx/ec2x"
	"github.com/shtetl/zmanim-ops/internal/benchkit"
	"github.com/shtetl/zmanim-ops/internal/boxbuild"
	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/deps"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

// Options of bench:recovery (environment).
const (
	EnvRoot      = "ZOPS_RECOVERY_ROOT"       // an image root already built (default: build one like ami:local)
	EnvLossAfter = "ZOPS_RECOVERY_LOSS_AFTER" // writing after the base backup before the volume is lost
	EnvWork      = "ZOPS_RECOVERY_WORK"       // volumes and overlays (default .state/recovery)
)

// Goals of the drills (issue 16; the spec allows an RTO of 30 minutes).
const (
	GoalBoxLostRTO    = 60 * time.Second
	GoalVolumeLostRTO = 5 * time.Minute
	GoalRPO           = 300 * time.Second
)

// BenchTarget is bench:recovery: both drills on the local box; last line
// `recovery: box_lost_rto_s=A volume_lost_rto_s=B rpo_s=C`.
func BenchTarget(ctx context.Context, out io.Writer) error {
	r := opts.New()
	root := r.String(EnvRoot, "")
	work := r.String(EnvWork, filepath.Join(config.RepoRoot(), ".state", "recovery"))
	loss := r.Duration(EnvLossAfter, 150*time.Second)
	if err := r.Err(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("bench:recovery boots the box in namespaces with loop volumes: run it as root")
	}
	if err := deps.Ensure(ctx, "bench:recovery"); err != nil {
		return err
	}
	env, err := config.LoadWith(config.Options{Env: "local"})
	if err != nil {
		return err
	}
	if root == "" {
		res, err := boxbuild.Build(ctx, boxbuild.Options{Work: filepath.Join(work, "image"), Via: os.Getenv("ZOPS_AMI_VIA"), Out: out})
		if err != nil {
			return err
		}
		root = res.Root
	}
	rep, err := Run(ctx, Options{Root: root, Work: work, Env: env, Out: out, LossAfter: loss})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "goals: box_lost_rto_s <= %.0f (%.1f), volume_lost_rto_s <= %.0f (%.1f), rpo_s <= %.0f (%.1f); on AWS add the group's detection and the launch to the box loss\n",
		GoalBoxLostRTO.Seconds(), rep.BoxLostRTO.Seconds(), GoalVolumeLostRTO.Seconds(), rep.VolumeLostRTO.Seconds(), GoalRPO.Seconds(), rep.RPO.Seconds())
	fmt.Fprintln(out, benchkit.Line("recovery", benchkit.Float("box_lost_rto_s", rep.BoxLostRTO.Seconds(), 1),
		benchkit.Float("volume_lost_rto_s", rep.VolumeLostRTO.Seconds(), 1), benchkit.Float("rpo_s", rep.RPO.Seconds(), 1)))
	return nil
}

// RecoverTarget is backup:recover: on the production box (found by its Name tag), through Run
// Command, `zops-backup recover` (internal/backup.Recover): the newest base backup and all
// shipped WAL into the new blank volume's cluster. On the twin it is refused: the twin's
// PostgreSQL is shared; bench:recovery drills the same on the local box.
func RecoverTarget(ctx context.Context, out io.Writer) error {
	r := opts.New()
	force := "0"
	if r.Bool("ZOPS_FORCE", false) {
		force = "1"
	}
	if err := r.Err(); err != nil {
		return err
	}
	env, err := config.Load()
	if err != nil {
		return err
	}
	if env.IsTwin() {
		return fmt.Errorf("backup:recover restores the production box's cluster (ZOPS_ENV=prod); on the twin, go tool mage bench:recovery drills it on the local box")
	}
	c, err := awsx.New(ctx, env)
	if err != nil {
		return err
	}
	id := env.Instance.InstanceID
	if id == "" {
		if id, err = ec2x.RunningByName(ctx, ec2x.New(c), "zmanim-"+env.Name+"-box"); err != nil {
			return err
		}
	}
	rc := &awsx.RunCommand{SSM: c.SSM}
	fmt.Fprintf(out, "backup:recover on %s: zops-backup recover (newest base backup + shipped WAL)\n", id)
	inv, err := rc.Run(ctx, awsx.Command{
		InstanceID: id, Comment: "zops backup:recover",
		Commands: []string{"systemd-run --wait --pipe --quiet -p EnvironmentFile=-" + boxspec.InstanceFile + " -E ZOPS_ENV=" + env.Name + " -E ZOPS_BACKUP_NOTIFY=0 -E ZOPS_FORCE=" + force + " " + boxspec.ZopsBackup + " recover"},
		Timeout:  time.Hour,
	}, func(cmd string) { fmt.Fprintf(out, "  command %s sent\n", cmd) })
	fmt.Fprint(out, inv.Stdout)
	if err != nil {
		return fmt.Errorf("backup:recover on %s: %w\n%s", id, err, inv.Stderr)
	}
	return nil
}
