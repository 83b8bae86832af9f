package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/awsx/ec2x"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/firstboot/claim"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

// ParamBox is the SSM parameter (under the prefix) where the compute stack publishes the ids
// the box claims at first boot and the rollout checks: data volume, Elastic IP allocation,
// Cloud Map service, zone, port (claim.Params).
const ParamBox = claim.Param

// GroupName is the box's Auto Scaling group (infra/compute.go names it so).
func GroupName(env string) string { return "zmanim-" + env + "-box" }

// Options of ami:rollout, read from the environment.
type Options struct {
	Force  bool          // ZOPS_FORCE=1: replace the box even when it already runs the image
	Health time.Duration // ZOPS_ROLLOUT_HEALTH_WAIT: how long the new box has to become healthy
}

// ReadOptions reads ami:rollout's options.
func ReadOptions(r *opts.Reader) Options {
	return Options{
		Force:  r.Bool("ZOPS_FORCE", false),
		Health: r.Duration("ZOPS_ROLLOUT_HEALTH_WAIT", 10*time.Minute),
	}
}

// ErrNeedsAWS refuses ami:rollout on the twin, which has no Auto Scaling group.
var ErrNeedsAWS = errors.New("ami:rollout replaces the box on AWS")

// Target is ami:rollout [IMAGE].
func Target(ctx context.Context, out io.Writer, image string) error {
	r := opts.New()
	o := ReadOptions(r)
	if err := r.Err(); err != nil {
		return err
	}
	env, err := config.Load()
	if err != nil {
		return err
	}
	if env.IsTwin() {
		return fmt.Errorf("%w (ZOPS_ENV=prod); the twin has no Auto Scaling group: `go tool mage bench:recovery` replaces the local box the same way (same data volume, new root)", ErrNeedsAWS)
	}
	c, err := awsx.New(ctx, env)
	if err != nil {
		return err
	}
	raw, err := c.Secret(ctx, ParamBox)
	if err != nil {
		return fmt.Errorf("read the box parameter %s (written by infra:deploy): %w", env.SSM(ParamBox), err)
	}
	p, err := claim.ParseParams(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", env.SSM(ParamBox), err)
	}
	rc := &awsx.RunCommand{SSM: c.SSM}
	ro := &Rollout{
		Group: GroupName(env.Name), Param: env.Instance.AMIParameter, VolumeID: p.VolumeID, ServiceID: p.ServiceID,
		Image: image, Force: o.Force, HealthWait: o.Health,
		EC2: ec2x.New(c), ASG: autoscaling.NewFromConfig(c.Config), SSM: c.SSM, CloudMap: servicediscovery.NewFromConfig(c.Config),
		Stopper: ssmStopper{rc}, Health: HTTPHealth("https://"+env.Domain+"/health", &http.Client{Timeout: 10 * time.Second}),
		Out: out, CloudMapEntry: claim.CloudMapInstanceID,
	}
	_, err = ro.Run(ctx)
	return err
}

// ssmStopper stops the box's services through Run Command before the box is terminated.
type ssmStopper struct{ rc *awsx.RunCommand }

func (s ssmStopper) Stop(ctx context.Context, id string) error {
	_, err := s.rc.Run(ctx, awsx.Command{
		InstanceID: id, Comment: "zops ami:rollout: stop services before replacement",
		Commands: []string{"systemctl stop zmanim.target", "sync"}, Timeout: 2 * time.Minute, Delivery: time.Minute,
	}, nil)
	return err
}

// HTTPHealth asks url (the edge's /health) and reads version and recipe_hash.
func HTTPHealth(url string, hc *http.Client) HealthFunc {
	return func(ctx context.Context) (Health, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return Health{}, err
		}
		req.Header.Set("Cache-Control", "no-cache")
		resp, err := hc.Do(req)
		if err != nil {
			return Health{}, err
		}
		defer resp.Body.Close()
		var body struct {
			Version    string `json:"version"`
			RecipeHash string `json:"recipe_hash"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
		return Health{Status: resp.StatusCode, Version: body.Version, RecipeHash: body.RecipeHash}, nil
	}
}
