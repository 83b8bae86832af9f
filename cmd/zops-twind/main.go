// Command zops-twind is the local twin's daemon (JWT issuer, box supervisor, API Gateway and
// CloudFront emulation). `go tool mage twin:up` builds and starts it; it is not meant to be
// run by hand.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/twin/daemon"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "zops-twind:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("zops-twind", flag.ContinueOnError)
	root := fs.String("root", "", "repository root")
	cfgPath := fs.String("config", "", "config file")
	envName := fs.String("env", "", "environment")
	backups := fs.Bool("backups", true, "run the box's backup timers (twin:up passes false for ZOPS_TWIN_BACKUPS=0)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env, err := config.LoadWith(config.Options{Path: *cfgPath, Env: *envName, Root: *root})
	if err != nil {
		return err
	}
	if !env.IsTwin() {
		return fmt.Errorf("environment %s is not a twin", env.Name)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return daemon.Run(ctx, env, *root+"/deploy/systemd", *backups)
}
