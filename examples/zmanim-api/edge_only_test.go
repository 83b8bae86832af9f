package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/edge"
	"github.com/shtetl/zmanim-ops/internal/gateway"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// Finding 4 (issue 14): API Gateway's own execute-api endpoint was a path around CloudFront
// (the gateway added the origin-verify secret itself). This runs the real handler chain of the
// API on the twin's PostgreSQL, behind the gateway and the edge built from the one description
// (in-process, so the shared twin is untouched): a request sent to the gateway directly gets
// 403 and the database sees nothing; the same request through the edge is served.
func TestDirectGatewayRequestIsRefusedWithoutTouchingTheDatabase(t *testing.T) {
	pgURL := testenv.Require(t, testenv.PostgresURL)
	redisAddr := testenv.Require(t, testenv.RedisAddr)
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/zmanim"
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()

	env, err := config.LoadWith(config.Options{Env: "local", Path: "/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "edge-only-secret"
	a := &app{db: pool, redis: rdb}
	box := httptest.NewServer(originVerify(env.API.OriginVerifyHeader, secret, a.routes()))
	defer box.Close()
	gw, err := gateway.New(gateway.Options{Config: env.API, BoxURL: box.URL, KeyRefreshInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	gwSrv := httptest.NewServer(gw)
	defer gwSrv.Close()
	apiOrigin := config.Origin{ID: config.OriginIDAPI, Kind: config.OriginAPI}
	ed, err := edge.New(edge.Options{Config: env.Edge, Origins: map[string]edge.OriginEndpoint{
		config.OriginIDAPI:    {URL: gwSrv.URL, Headers: env.OriginCustomHeaders(apiOrigin, secret)},
		config.OriginIDStatic: {URL: "http://127.0.0.1:1/unused", S3: &edge.S3Auth{Region: env.Region, Credentials: credentials.NewStaticCredentialsProvider("unused", "unused", "")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	edgeSrv := httptest.NewServer(ed)
	defer edgeSrv.Close()

	get := func(base, path string, kv ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for i := 0; i < len(kv); i += 2 {
			req.Header.Set(kv[i], kv[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	before := pool.Stat().AcquireCount()
	for _, kv := range [][]string{nil, {env.API.OriginVerifyHeader, "guessed"}} {
		if code, body := get(gwSrv.URL, "/api/cities?q=Jerusalem", kv...); code != http.StatusForbidden {
			t.Fatalf("direct request to the gateway %v: %d %s, want 403", kv, code, body)
		}
	}
	if n := pool.Stat().AcquireCount() - before; n != 0 {
		t.Fatalf("the refused requests acquired %d database connections", n)
	}
	// A viewer's forged header is replaced by CloudFront's; the request is served.
	if code, body := get(edgeSrv.URL, "/api/cities?q=Jerusalem", env.API.OriginVerifyHeader, "forged"); code != http.StatusOK {
		t.Fatalf("through the edge: %d %s, want 200", code, body)
	}
	if pool.Stat().AcquireCount() == before {
		t.Fatalf("the request through the edge did not reach the database")
	}
}
