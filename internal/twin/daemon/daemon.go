// Package daemon is the twin's own long-running process: it hosts the parts of production that
// the toolkit emulates itself — the Clerk stand-in (JWT issuer), the box supervisor running the
// API on its socket (as systemd + zops-box do on the instance), the API Gateway HTTP API and the
// CloudFront edge — all on loopback, plus a control port (box control, CloudFront API,
// latency hooks). External parts (S3, kumo, PostgreSQL, Redis) are separate processes started
// by package twin.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/redis/go-redis/v9"

	"github.com/shtetl/zmanim-ops/internal/box"
	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/edge"
	"github.com/shtetl/zmanim-ops/internal/gateway"
	"github.com/shtetl/zmanim-ops/internal/jwtissuer"
	"github.com/shtetl/zmanim-ops/internal/onbox"
	"github.com/shtetl/zmanim-ops/internal/twinstate"
)

// Layout of the box inside the state directory: production paths under <state>/box.
func BoxRoot(st twinstate.Dir) string       { return st.Path("box") }
func BoxCurrent(st twinstate.Dir) string    { return st.Path("box", "opt", "zmanim", "current") }
func BoxReleases(st twinstate.Dir) string   { return st.Path("box", "opt", "zmanim", "releases") }
func BoxEnvFile(st twinstate.Dir) string    { return st.Path("box", "etc", "zmanim", "api.env") }
func BoxBinary(st twinstate.Dir) string     { return filepath.Join(BoxCurrent(st), "zmanim-api") }
func AccessLogPath(st twinstate.Dir) string { return st.Path("logs", "gateway-access.log") }

// Run serves until ctx is done. unitsDir holds the production systemd units the supervisor
// takes its settings from.
func Run(ctx context.Context, env *config.Env, unitsDir string, backups bool) error {
	st := twinstate.Dir(env.Twin.StateDir)
	sec, err := st.ReadSecrets()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	host := env.Twin.Host
	p := env.Twin.Ports
	addr := func(port int) string { return net.JoinHostPort(host, fmt.Sprint(port)) }

	// Listen on every port first so that a port in use fails the start before anything runs.
	lns := map[string]net.Listener{}
	for _, c := range []struct {
		name string
		port int
	}{{"jwt", p.JWT}, {"box", p.Box}, {"gateway", p.Gateway}, {"edge", p.Edge}, {"control", p.Control}} {
		ln, err := net.Listen("tcp", addr(c.port))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("twin.ports.%s: %w; stop what uses it or change the port in zmanim-ops.yaml", c.name, err)
		}
		lns[c.name] = ln
	}

	az := env.API.Authorizers[config.AuthorizerJWT]
	iss, err := jwtissuer.Load(st.Path("jwt-key.pem"), az.Issuer, az.Audience[0])
	if err != nil {
		return err
	}

	unit, err := box.ParseUnit(filepath.Join(unitsDir, "zmanim-api.service"))
	if err != nil {
		return err
	}
	journal, err := os.OpenFile(st.Log("zmanim-api"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer journal.Close()
	sup, err := box.New(box.Options{
		Listener: lns["box"],
		Binary:   BoxBinary(st),
		EnvFile:  BoxEnvFile(st),
		Unit:     unit,
		RunDir:   st.Path("run", "box"),
		Journal:  journal,
		Logger:   logger.With("component", "box"),
		// As zops-box run does on the box: a deploy that died before its health gate is
		// undone before any start.
		BeforeStart: func() error { _, err := onbox.RecoverPending(st.Path("box"), journal); return err },
		Deps: []box.Dep{
			{Name: boxspec.UnitPostgres, Check: func(context.Context) error { return pgReady(st.Path("pg", "data")) }},
			{Name: boxspec.UnitRedis, Check: func(ctx context.Context) error {
				r := redis.NewClient(&redis.Options{Addr: addr(p.Redis)})
				defer r.Close()
				return r.Ping(ctx).Err()
			}},
		},
	})
	if err != nil {
		return err
	}

	accessLog, err := os.OpenFile(AccessLogPath(st), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer accessLog.Close()
	gw, err := gateway.New(gateway.Options{
		Config:    env.API,
		BoxURL:    "http://" + addr(p.Box),
		Logger:    logger.With("component", "gateway"),
		AccessLog: accessLog,
	})
	if err != nil {
		return err
	}
	defer gw.Close()

	ed, err := edge.New(edge.Options{
		Config: env.Edge,
		Origins: map[string]edge.OriginEndpoint{
			// CloudFront's origin custom header: the secret that proves a request came
			// through the edge; the gateway passes it through to the box.
			config.OriginIDAPI: {URL: "http://" + addr(p.Gateway), Headers: env.OriginCustomHeaders(config.Origin{ID: config.OriginIDAPI, Kind: config.OriginAPI}, sec.OriginVerify)},
			config.OriginIDStatic: {
				URL: "http://" + addr(p.S3) + "/" + env.Buckets.Static,
				S3:  &edge.S3Auth{Region: env.Region, Credentials: credentials.NewStaticCredentialsProvider(sec.S3AccessKey, sec.S3SecretKey, "")},
			},
		},
		DistributionID: config.TwinDistributionID,
		Logger:         logger.With("component", "edge"),
	})
	if err != nil {
		return err
	}

	control := http.NewServeMux()
	control.Handle("/_twin/box/", sup.Handler("/_twin/box/"))
	control.Handle("/", ed.ControlHandler())
	control.HandleFunc("GET /_twin/daemon", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"pid": os.Getpid(), "box": sup.Status()})
	})

	servers := []*http.Server{
		{Handler: iss.Handler()},
		{Handler: gw},
		{Handler: ed},
		{Handler: control},
	}
	listeners := []net.Listener{lns["jwt"], lns["gateway"], lns["edge"], lns["control"]}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		s.ReadHeaderTimeout = 10 * time.Second
		go func(s *http.Server, ln net.Listener) {
			if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}(s, listeners[i])
	}
	// The API starts last: its JWKS fetch needs the issuer, as Clerk is up before the box.
	if err := sup.Start(ctx); err != nil {
		logger.Error("api did not start", "err", err.Error())
		// Keep serving: the edge and gateway answer 502/503, twin:status reports the box as
		// failed, and a release can install a working binary.
	}
	// The box's backup timers, run by the twin itself (ZOPS_TWIN_BACKUPS=0, passed as
	// --backups=false, turns them off).
	if bin := st.Path("bin", "zops-backup"); backups {
		if _, err := os.Stat(bin); err == nil {
			blog, err := os.OpenFile(st.Log("backup-jobs"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			defer blog.Close()
			schedule(ctx, bin, BackupJobs(env), blog, logger.With("component", "backup"))
		}
	}
	logger.Info("twin daemon ready", "edge", "http://"+addr(p.Edge))
	select {
	case <-ctx.Done():
	case err := <-errc:
		logger.Error("server failed", "err", err.Error())
	}
	sup.Stop()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	lns["box"].Close()
	return nil
}
