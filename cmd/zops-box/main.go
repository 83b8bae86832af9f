// Command zops-box is the production on-box agent of zmanim-ops, installed at
// /opt/zmanim/bin/zops-box and run by systemd (deploy/systemd/zmanim-api.service).
//
//	zops-box run [flags]              hold the socket systemd passes (LISTEN_FDS) and supervise the
//	                                  API (internal/box): restart on failure, zero-downtime reload
//	zops-box reload [--root /]        ExecReload=: start the binary `current` points to on the same
//	                                  socket, wait for READY=1, stop the old one
//	zops-box install [flags] VERSION  the release's stage step over SSM Run Command, at nice 10:
//	                                  download VERSION, verify it and install it side by side while
//	                                  the current release serves; nothing switches
//	zops-box deploy [flags] VERSION   called by `mage release` over SSM Run Command: download VERSION
//	                                  from the releases bucket, verify its sha256 and ELF machine,
//	                                  install side by side, swap `current`, reload, health gate,
//	                                  automatic rollback (internal/onbox.Agent, the same code the
//	                                  twin runs)
//	zops-box status|logs [--root /]   the supervisor's status and last log lines
//	zops-box firstboot [--no-start]   zops-firstboot.service: data volume, PostgreSQL cluster,
//	                                  /etc/zmanim/api.env from SSM, then zmanim.target
//	                                  (internal/firstboot)
//
// It is cross-compiled for linux/arm64 by every release.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shtetl/zmanim-ops/internal/box"
	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/firstboot"
	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// Set at build time like the API's.
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "zops-box:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: zops-box run|reload|install VERSION|deploy VERSION|status|logs|firstboot|--version")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("zops-box "+cmd, flag.ContinueOnError)
	root := fs.String("root", "/", "file system root (the twin uses its state directory)")
	switch cmd {
	case "--version", "version":
		fmt.Printf("zops-box %s (commit %s, built %s)\n", version, commit, date)
		return nil
	case "run":
		binary := fs.String("binary", boxspec.APIPath, "API binary (through the current symlink)")
		envFile := fs.String("env-file", boxspec.APIEnvFile, "EnvironmentFile= of the API")
		unit := fs.String("unit", boxspec.UnitsDir+"/"+boxspec.UnitAPI, "unit file holding Restart=, RestartSec=, TimeoutStartSec=, TimeoutStopSec=")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		return runSupervisor(ctx, *root, *binary, *envFile, *unit)
	case "firstboot":
		// zops-firstboot.service: data volume, PostgreSQL cluster, API environment from SSM,
		// then zmanim.target (internal/firstboot). --no-start prepares without starting.
		noStart := fs.Bool("no-start", false, "do not start "+boxspec.UnitTarget+" at the end")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		return firstboot.Main(ctx, *root, !*noStart, os.Stdout)
	case "reload", "status", "logs":
		n := fs.Int("n", 100, "log lines")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		c := controlClient(*root)
		switch cmd {
		case "reload":
			p, err := c.Reload(ctx)
			if err != nil {
				return err
			}
			fmt.Printf("reloaded: %s pid %d\n", p.Version, p.PID)
		case "status":
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			b, _ := json.MarshalIndent(st, "", "  ")
			fmt.Println(string(b))
		case "logs":
			s, err := c.Logs(ctx, *n)
			if err != nil {
				return err
			}
			fmt.Print(s)
		}
		return nil
	case "deploy":
		bucket := fs.String("bucket", "", "releases bucket")
		region := fs.String("region", "", "AWS region (default: from the instance)")
		binary := fs.String("binary", "zmanim-api", "installed binary name")
		healthURL := fs.String("health-url", fmt.Sprintf("http://127.0.0.1:%d/health", boxspec.APIPort), "health endpoint of the API on the box")
		envFile := fs.String("env-file", boxspec.APIEnvFile, "API environment (for the origin-verify header of the health check)")
		timeout := fs.Duration("health-timeout", 30*time.Second, "health gate")
		keep := fs.Int("keep", 10, "installed releases to keep")
		fence := fs.Int64("fence", 0, "fencing token of the release lock; an older one than this box has seen is refused")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() != 1 || *bucket == "" {
			return errors.New("usage: zops-box deploy --bucket BUCKET VERSION")
		}
		return deploy(ctx, *root, *bucket, *region, *binary, *healthURL, *envFile, *timeout, *keep, *fence, fs.Arg(0))
	case "install":
		bucket := fs.String("bucket", "", "releases bucket")
		region := fs.String("region", "", "AWS region (default: from the instance)")
		binary := fs.String("binary", "zmanim-api", "installed binary name")
		keep := fs.Int("keep", 10, "installed releases to keep (the serving one and the new one never go)")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() != 1 || *bucket == "" {
			return errors.New("usage: zops-box install --bucket BUCKET VERSION (download, verify and install side by side; no switch)")
		}
		return install(ctx, *root, *bucket, *region, *binary, *keep, fs.Arg(0))
	default:
		return fmt.Errorf("unknown command %q: run, reload, install, deploy, status, logs, firstboot", cmd)
	}
}

func socketPath(root string) string { return filepath.Join(root, "run", "zmanim", "box.sock") }

func controlClient(root string) *box.Client {
	sock := socketPath(root)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	return &box.Client{Base: "http://zops-box/", HTTP: &http.Client{Transport: tr, Timeout: 3 * time.Minute}}
}

// runSupervisor is ExecStart=: the socket comes from systemd (fd 3).
func runSupervisor(ctx context.Context, root, binary, envFile, unitPath string) error {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS")); n < 1 || (os.Getenv("LISTEN_PID") != "" && os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid())) {
		return errors.New("no socket from systemd (LISTEN_FDS): start zmanim-api.socket / zmanim-api.service, not zops-box directly")
	}
	f := os.NewFile(3, "zmanim-api.socket")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("socket from systemd: %w", err)
	}
	unit, err := box.ParseUnit(unitPath)
	if err != nil {
		log.Warn("unit file unreadable; using systemd defaults", "err", err.Error())
	}
	runDir := filepath.Join(root, "run", "zmanim")
	// Before every start: a deploy that died between swapping `current` and its health gate
	// is undone, so a boot or crash restart only ever starts a proven version.
	recover := func() error { _, err := onbox.RecoverPending(root, os.Stderr); return err }
	sup, err := box.New(box.Options{Listener: ln, Binary: binary, EnvFile: envFile, Unit: unit, RunDir: runDir, Journal: os.Stdout, Logger: log, BeforeStart: recover})
	if err != nil {
		return err
	}
	sock := socketPath(root)
	_ = os.Remove(sock)
	cl, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	_ = os.Chmod(sock, 0o600)
	srv := &http.Server{Handler: sup.Handler("/")}
	go func() { _ = srv.Serve(cl) }()
	defer srv.Close()
	if err := sup.Start(ctx); err != nil {
		return err
	}
	sdNotify("READY=1")
	select {
	case <-ctx.Done():
	case err := <-sup.Failed():
		// Given up (start limit): exit non-zero so systemd shows the unit failed and applies
		// its Restart= instead of keeping a supervisor that serves nothing.
		sdNotify("STOPPING=1")
		sup.Stop()
		return fmt.Errorf("giving up: %w", err)
	}
	sdNotify("STOPPING=1")
	sup.Stop()
	return nil
}

func sdNotify(state string) {
	p := os.Getenv("NOTIFY_SOCKET")
	if p == "" {
		return
	}
	if p[0] == '@' {
		p = "\x00" + p[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}

// releaseStore is the releases bucket, with the instance's credentials and region (or --region).
func releaseStore(ctx context.Context, bucket, region string) (*onbox.S3Store, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return &onbox.S3Store{Client: s3.NewFromConfig(cfg), Name: bucket}, nil
}

// install is the release's stage step on the box: the version's binary downloaded, its
// sha256 and ELF header checked, and written side by side under releases/, while the
// current one keeps serving. The deploy that follows finds it installed and only switches.
func install(ctx context.Context, root, bucket, region, binary string, keep int, v string) error {
	if err := box.SetNice(os.Getpid(), box.StartNice); err != nil {
		fmt.Fprintf(os.Stderr, "zops-box: could not lower the install's priority (it runs at the API's): %v\n", err)
	}
	st, err := releaseStore(ctx, bucket, region)
	if err != nil {
		return err
	}
	a := &onbox.Agent{Root: root, Binary: binary, Arch: runtime.GOARCH, Store: st, Out: os.Stdout, Keep: keep}
	if err := a.Install(ctx, v); err != nil {
		return err
	}
	if removed, err := a.Prune(v); err == nil && len(removed) > 0 {
		fmt.Printf("removed old installs: %v\n", removed)
	}
	fmt.Printf("installed %s (not serving yet)\n", v)
	return nil
}

func deploy(ctx context.Context, root, bucket, region, binary, healthURL, envFile string, timeout time.Duration, keep int, fence int64, v string) error {
	st, err := releaseStore(ctx, bucket, region)
	if err != nil {
		return err
	}
	hdr := http.Header{}
	if env, err := onbox.ReadEnvFile(filepath.Join(root, envFile)); err == nil && env["ZMANIM_ORIGIN_VERIFY_SECRET"] != "" {
		name := env["ZMANIM_ORIGIN_VERIFY_HEADER"]
		if name == "" {
			name = "X-Origin-Verify"
		}
		hdr.Set(name, env["ZMANIM_ORIGIN_VERIFY_SECRET"])
	}
	a := &onbox.Agent{
		Root: root, Binary: binary, Arch: runtime.GOARCH, Store: st,
		Supervisor: controlClient(root), HealthURL: healthURL, HealthHeader: hdr, HealthTimeout: timeout,
		Keep: keep, Out: os.Stdout, Fence: fence,
	}
	o, err := a.Deploy(ctx, v)
	if err != nil {
		return err
	}
	if removed, err := a.Prune(o.Previous); err == nil && len(removed) > 0 {
		fmt.Printf("removed old installs: %v\n", removed)
	}
	fmt.Printf("deployed %s (previous %s)\n", v, o.Previous)
	return nil
}
