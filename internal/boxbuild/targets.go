package boxbuild

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/shtetl/zmanim-ops/internal/boxproof"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/deps"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

// Options of ami:local and bench:box (environment).
const (
	EnvWork = "ZOPS_AMI_WORK" // build directory (default .state/box)
	EnvVia  = "ZOPS_AMI_VIA"  // packer (default) or chroot
)

func readOptions() (work, via string, err error) {
	r := opts.New()
	work = r.String(EnvWork, filepath.Join(config.RepoRoot(), ".state", "box"))
	via = r.String(EnvVia, "packer")
	if via != "packer" && via != "chroot" {
		r.Problem(EnvVia, via, "packer or chroot")
	}
	return work, via, r.Err()
}

func preflight(ctx context.Context, target string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s builds a root with debootstrap and boots it in namespaces: run it as root", target)
	}
	return deps.Ensure(ctx, target)
}

// LocalTarget is ami:local: build the root with packer (zops-local.box) and prove it.
func LocalTarget(ctx context.Context, out io.Writer) error {
	work, via, err := readOptions()
	if err != nil {
		return err
	}
	if err := preflight(ctx, "ami:local"); err != nil {
		return err
	}
	env, err := config.LoadWith(config.Options{Env: "local"})
	if err != nil {
		return err
	}
	t := time.Now()
	res, err := Build(ctx, Options{Work: work, Via: via, Out: out})
	if err != nil {
		return err
	}
	n, err := VerifyUnits(ctx, res.Root)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ami:local: systemd-analyze verify --root=%s: %d units clean\n", res.Root, n)
	rep, err := boxproof.Run(ctx, boxproof.Options{Root: res.Root, Work: work, Env: env, Out: out})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ami:local: box built (%.0fs) and proven in %.0fs: boot_to_healthy_s=%.2f service_to_healthy_s=%.2f rows=%d deploy_requests=%d deploy_failed=%d\n",
		res.BuildSecs+res.StageSecs, time.Since(t).Seconds(), rep.BootToHealthy.Seconds(), rep.ServiceToHealthy.Seconds(), rep.SecondBootRows, rep.DeployRequests, rep.DeployFailures)
	return nil
}

// BenchTarget is bench:box: a (warm) rebuild and a first boot to healthy; last line
// `box: build_s=A boot_to_healthy_s=B`.
func BenchTarget(ctx context.Context, out io.Writer) error {
	work, via, err := readOptions()
	if err != nil {
		return err
	}
	if err := preflight(ctx, "bench:box"); err != nil {
		return err
	}
	env, err := config.LoadWith(config.Options{Env: "local"})
	if err != nil {
		return err
	}
	res, err := Build(ctx, Options{Work: work, Via: via, Out: out})
	if err != nil {
		return err
	}
	rep, err := boxproof.Run(ctx, boxproof.Options{Root: res.Root, Work: work, Env: env, Out: out, Quick: true})
	if err != nil {
		return err
	}
	// boot_to_healthy_s is a boot on an existing data volume (every box after the first: a
	// reboot or an ami rollout); first_boot_s adds formatting and initdb on a blank volume.
	fmt.Fprintf(out, "box: build_s=%.1f boot_to_healthy_s=%.2f first_boot_s=%.2f service_to_healthy_s=%.2f via=%s\n",
		res.BuildSecs+res.StageSecs, rep.RebootToHealthy.Seconds(), rep.BootToHealthy.Seconds(), rep.ServiceToHealthy.Seconds(), via)
	return nil
}
