package site

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/twinstate"
)

// Run is site:sync (dryRun false) and site:plan (dryRun true) for the configured environment.
func Run(ctx context.Context, dir string, dryRun bool) error {
	eo, err := ReadEnv()
	if err != nil {
		return err
	}
	env, err := config.Load()
	if err != nil {
		return err
	}
	t, err := TargetFor(ctx, env, eo)
	if err != nil {
		return err
	}
	fmt.Printf("site: %s %s -> s3://%s (%s)\n", map[bool]string{true: "plan", false: "sync"}[dryRun], dir, t.Bucket, env.Name)
	_, _, err = Sync(ctx, Options{
		Dir: dir, Store: t.Store, Invalidator: t.Invalidator,
		Grace: eo.Grace, MaxDeleteShare: eo.MaxDeleteShare, PathBudget: eo.PathBudget,
		Wait: eo.Wait, Concurrency: eo.Concurrency, DryRun: dryRun, Out: os.Stdout,
	})
	if err != nil {
		return fmt.Errorf("site %s: %w", map[bool]string{true: "plan", false: "sync"}[dryRun], err)
	}
	return nil
}

// twinS3 returns the running twin's S3 endpoint, or an empty one when the twin is not up
// (the benchmark then starts its own versitygw).
func twinS3(ctx context.Context) Endpoint {
	env, err := config.Load()
	if err != nil || !env.IsTwin() {
		return Endpoint{}
	}
	sec, err := twinstate.Dir(env.Twin.StateDir).ReadSecrets()
	if err != nil {
		return Endpoint{}
	}
	ep := Endpoint{URL: env.URL(env.Twin.Ports.S3), AccessKey: sec.S3AccessKey, SecretKey: sec.S3SecretKey, Region: env.Region}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := NewS3Client(ep).ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		return Endpoint{}
	}
	return ep
}

// RunBench is bench:site.
func RunBench(ctx context.Context) error {
	eo, err := ReadEnv()
	if err != nil {
		return err
	}
	o := BenchOptions{
		Endpoint:    Endpoint{URL: os.Getenv("ZOPS_S3_ENDPOINT"), AccessKey: os.Getenv("ZOPS_S3_ACCESS_KEY"), SecretKey: os.Getenv("ZOPS_S3_SECRET_KEY")},
		AWS:         os.Getenv("ZOPS_AWS_CLI"),
		Concurrency: eo.Concurrency,
	}
	if o.Endpoint.URL == "" {
		o.Endpoint = twinS3(ctx)
	}
	if o.Endpoint.Region == "" {
		o.Endpoint.Region = os.Getenv("ZOPS_S3_REGION")
	}
	res, err := Bench(ctx, o)
	if err != nil {
		return err
	}
	fmt.Println(res.Line())
	return nil
}
