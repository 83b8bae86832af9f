// Command zops-loadgen is the load generator as a standalone program: `run` executes one
// regional runner's share of a load test from a spec file (what the prod orchestrator starts
// on each regional instance through SSM), `fake-edge` serves the package's fake edge on
// loopback to try the generator without the twin, and `trivial` serves the trivial endpoint
// of bench:loadgen.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/loadtest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "zops-loadgen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: zops-loadgen run -spec spec.json -out result.json | fake-edge -addr 127.0.0.1:17443 [-regions loadtest/regions.json] | trivial -addr 127.0.0.1:0")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch args[0] {
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		spec := fs.String("spec", "spec.json", "run spec (JSON)")
		out := fs.String("out", "result.json", "where to write the result (JSON)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return runSpec(ctx, *spec, *out)
	case "trivial":
		fs := flag.NewFlagSet("trivial", flag.ContinueOnError)
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		l, err := net.Listen("tcp", *addr)
		if err != nil {
			return err
		}
		fmt.Printf("http://%s\n", l.Addr())
		srv := &http.Server{Handler: loadtest.TrivialEdgeHandler()}
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case "fake-edge":
		fs := flag.NewFlagSet("fake-edge", flag.ContinueOnError)
		addr := fs.String("addr", "127.0.0.1:17443", "listen address")
		regions := fs.String("regions", "loadtest/regions.json", "region profiles ('' for no latency)")
		origin := fs.Duration("origin-delay", 2*time.Millisecond, "origin processing time")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var profiles []loadtest.RegionProfile
		if *regions != "" {
			rp, err := loadtest.LoadRegionProfiles(*regions)
			if err != nil {
				return err
			}
			profiles = rp.Regions
		}
		srv := &http.Server{Addr: *addr, Handler: loadtest.NewFakeEdge(profiles, *origin)}
		go func() { <-ctx.Done(); srv.Close() }()
		fmt.Printf("fake edge on http://%s\n", *addr)
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func runSpec(ctx context.Context, specPath, out string) error {
	spec, err := loadtest.ReadRunSpec(specPath)
	if err != nil {
		return err
	}
	token := os.Getenv("ZOPS_LOADTEST_TOKEN")
	if token == "" && spec.TokenParameter != "" {
		if token, err = awsx.SecretFromDefaultChain(ctx, spec.TokenParameter); err != nil {
			return err
		}
	}
	plan, _, err := spec.Plan(token)
	if err != nil {
		return err
	}
	if d := time.Until(spec.StartAt); d > 0 {
		fmt.Printf("waiting %s for the common start\n", d.Round(time.Second))
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	res, err := loadtest.Run(ctx, plan)
	if err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	fmt.Printf("%s: %d scheduled, %d dropped, result in %s\n", spec.Region, res.Scheduled(), res.Dropped(), out)
	return nil
}
