package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func load(t *testing.T, yamlText, env string) (*Env, error) {
	t.Helper()
	dir := t.TempDir()
	path := ""
	if yamlText != "" {
		path = filepath.Join(dir, FileName)
		if err := os.WriteFile(path, []byte(yamlText), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return LoadWith(Options{Path: path, Env: env, Root: dir})
}

func TestDefaultsAreValid(t *testing.T) {
	for _, name := range []string{"local", "prod"} {
		e, err := load(t, "", name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if e.Name != name {
			t.Errorf("name = %q", e.Name)
		}
	}
	e, _ := load(t, "", "")
	if e.Name != "local" || !e.IsTwin() {
		t.Errorf("default environment = %q (twin %v), want the local twin", e.Name, e.IsTwin())
	}
	p, _ := load(t, "", "prod")
	if p.Region != "eu-west-1" || p.Buckets.Backups != "zmanim-backups-prod" || p.SSM(ParamResticPass) != "/zmanim/prod/restic-password" || p.Load.TargetRPS() != 500 {
		t.Errorf("prod defaults differ from the spec: %+v", p)
	}
	if p.API.Throttle.RateLimit != 500 || p.API.Throttle.BurstLimit != 1000 {
		t.Errorf("throttle = %+v", p.API.Throttle)
	}
}

func TestBadConfigListsEveryProblem(t *testing.T) {
	cases := []struct {
		name, yaml, env string
		want            []string
	}{
		{"unknown env", "", "staging", []string{`unknown environment "staging"`, "ZOPS_ENV"}},
		{"bad bucket and missing region", `
environments:
  prod:
    region: ""
    buckets: {static: "Bad_Bucket"}
`, "prod", []string{"buckets.static", "Bad_Bucket", "region: missing"}},
		{"unknown field", `
environments:
  prod:
    regoin: eu-west-1
`, "prod", []string{"regoin", "not found"}},
		{"ttl min > max", `
environments:
  prod:
    edge:
      cache_policies:
        api: {min_ttl: 100, default_ttl: 50, max_ttl: 10, query_strings: all, cookies: none}
`, "prod", []string{"min_ttl 100 is greater than max_ttl 10"}},
		{"shadowed behavior", `
environments:
  prod:
    edge:
      behaviors:
        - {path_pattern: "/api/*", origin: api, cache_policy: api}
        - {path_pattern: "/api/admin/*", origin: api, cache_policy: no-cache}
        - {path_pattern: "*", origin: static, cache_policy: static}
`, "prod", []string{"shadowed by behaviors[0]", "/api/admin/*"}},
		{"jwt route cached", `
environments:
  prod:
    edge:
      behaviors:
        - {path_pattern: "/api/*", origin: api, cache_policy: api}
        - {path_pattern: "*", origin: static, cache_policy: static}
`, "prod", []string{`route "ANY /api/publisher/{proxy+}" needs a token`, "one user's response could be served to another"}},
		{"route without integration, unknown authorizer", `
environments:
  prod:
    api:
      routes:
        - {key: "GET /health", integration: ""}
        - {key: "ANY /api/{proxy+}", integration: box, authorizer: okta}
`, "prod", []string{"every route needs an integration", `"okta" is not one of the authorizers`}},
		{"allowed methods and identity source", `
environments:
  prod:
    edge:
      behaviors:
        - {path_pattern: "/health", origin: api, cache_policy: no-cache, allowed_methods: [GET, HEAD], forward_all_viewer_headers: true}
        - {path_pattern: "/api/publisher/*", origin: api, cache_policy: no-cache, allowed_methods: [GET, POST], forward_all_viewer_headers: true}
        - {path_pattern: "/api/admin/*", origin: api, cache_policy: no-cache, allowed_methods: [GET, HEAD], forward_all_viewer_headers: true}
        - {path_pattern: "/api/*", origin: api, cache_policy: api, allowed_methods: [GET, HEAD]}
        - {path_pattern: "*", origin: static, cache_policy: static, allowed_methods: [HEAD, GET]}
    api:
      authorizers:
        clerk: {issuer: "https://clerk.example", audience: [zmanim-api], identity_source: "Authorization", algorithms: [RS256]}
`, "prod", []string{"behaviors[1] (/api/publisher/*).allowed_methods", "CloudFront allows exactly", "identity_source", "$request.header.Authorization"}},
		{"twin port clash and non-loopback", `
environments:
  local:
    twin:
      host: 0.0.0.0
      ports: {redis: 17432}
`, "local", []string{"twin.ports.redis: 17432 is also twin.ports.postgres", "loopback only"}},
		{"domain outside zone", `
environments:
  prod:
    domain: zmanim.example.org
`, "prod", []string{"not inside hosted_zone"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.yaml, c.env)
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestUnknownEnvIsTyped(t *testing.T) {
	_, err := load(t, "", "nope")
	if !errors.Is(err, ErrUnknownEnv) {
		t.Fatalf("err = %v", err)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Setenv("ZOPS_BUCKET_STATIC", "my-static")
	t.Setenv("ZOPS_EXPECTED_RPS", "80")
	e, err := load(t, "", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if e.Buckets.Static != "my-static" || e.Load.TargetRPS() != 800 {
		t.Errorf("overrides not applied: %+v %+v", e.Buckets, e.Load)
	}
	t.Setenv("ZOPS_EXPECTED_RPS", "lots")
	if _, err := load(t, "", "prod"); err == nil || !strings.Contains(err.Error(), "ZOPS_EXPECTED_RPS") {
		t.Errorf("bad override accepted: %v", err)
	}
}

func TestFileAddsEnvironment(t *testing.T) {
	e, err := load(t, `
environments:
  staging:
    account: "123456789012"
`, "staging")
	if err != nil {
		t.Fatal(err)
	}
	if e.Buckets.Static != "zmanim-static-staging" || e.SSMPrefix != "/zmanim/staging" || e.Kind != KindAWS {
		t.Errorf("new environment not derived from prod shape: %+v", e)
	}
}

func TestMatchPattern(t *testing.T) {
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"*", "/anything/at/all", true},
		{"/api/*", "/api/cities", true},
		{"/api/*", "/api", false},
		{"/api/*", "/API/cities", false},
		{"api/*", "/api/x", true},
		{"/images/*.jpg", "/images/a/b.jpg", true},
		{"/images/*.jpg", "/images/a/b.png", false},
		{"/file?.txt", "/file1.txt", true},
		{"/health", "/health", true},
		{"/health", "/healthz", false},
	}
	for _, c := range cases {
		if got := MatchPattern(c.pattern, c.path); got != c.want {
			t.Errorf("MatchPattern(%q, %q) = %v", c.pattern, c.path, got)
		}
	}
}

func TestMatchRoute(t *testing.T) {
	api := DefaultAPI("https://clerk.example", "https://zmanim.shtetl.io")
	cases := []struct {
		method, path, want, proxy string
		ok                        bool
	}{
		{"GET", "/health", "GET /health", "", true},
		{"POST", "/health", "", "", false},
		{"GET", "/api/cities", "ANY /api/{proxy+}", "cities", true},
		{"GET", "/api/publisher/profile", "ANY /api/publisher/{proxy+}", "profile", true},
		{"DELETE", "/api/admin/cache/flush", "ANY /api/admin/{proxy+}", "cache/flush", true},
		{"GET", "/api", "", "", false},
		{"GET", "/other", "", "", false},
	}
	for _, c := range cases {
		r, params, ok := api.MatchRoute(c.method, c.path)
		if ok != c.ok || r.Key != c.want || params["proxy"] != c.proxy {
			t.Errorf("%s %s -> %q %v %v, want %q %q %v", c.method, c.path, r.Key, params, ok, c.want, c.proxy, c.ok)
		}
	}
}
