package migrate

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/testenv"
	"github.com/shtetl/zmanim-ops/internal/testfix"
)

func TestParseEndpoints(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../../" + DefaultSmokeEndpoints)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	eps, err := ParseEndpoints(f)
	if err != nil {
		t.Fatalf("the shipped endpoint list does not parse: %v", err)
	}
	var public, user, admin int
	for _, e := range eps {
		switch e.Auth {
		case "none":
			public++
		case "user":
			user++
		case "admin":
			admin++
		}
	}
	if public == 0 || user == 0 || admin == 0 {
		t.Fatalf("endpoint list must cover public, user and admin routes: %d/%d/%d", public, user, admin)
	}
	bad := []string{"none GET", "root GET /x", "user GET /x", "none GET x"}
	for _, b := range bad {
		if _, err := ParseEndpoints(strings.NewReader(b)); err == nil {
			t.Errorf("ParseEndpoints(%q) accepted a bad line", b)
		}
	}
}

func TestCompareResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b response
		want string
	}{
		{response{200, []byte(`{"a":1,"b":[1,2]}`)}, response{200, []byte(`{"b":[1,2], "a":1}`)}, ""},
		{response{200, []byte(`{"a":1}`)}, response{404, []byte(`{"a":1}`)}, "status 200 from source, 404 from target"},
		{response{200, []byte(`{"c":[{"n":"x"}]}`)}, response{200, []byte(`{"c":[{"n":"y"}]}`)}, `$.c[0].n: source "x", target "y"`},
		{response{200, []byte(`{"c":[1]}`)}, response{200, []byte(`{"c":[1,2]}`)}, "$.c: 1 items from source, 2 from target"},
		{response{500, []byte(`x`)}, response{500, []byte(`x`)}, "both answered 500"},
		{response{200, []byte(`plain`)}, response{200, []byte(`plain!`)}, "bodies differ (5 vs 6 bytes)"},
	}
	for _, tt := range tests {
		if got := compareResponses(tt.a, tt.b); got != tt.want {
			t.Errorf("compareResponses(%s, %s) = %q, want %q", tt.a.body, tt.b.body, got, tt.want)
		}
	}
}

// TestSmoke runs the reference API on a seeded database and on its copy: all endpoints agree;
// after changing one city and one coverage row on the copy, the affected endpoints differ.
func TestSmoke(t *testing.T) {
	srv := testfix.RequirePG(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		if testenv.Required() {
			t.Fatal("redis-server not installed (apt-get install redis-server)")
		}
		t.Skip("redis-server not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "zmanim-api")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/zmanim-api")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build API: %v\n%s", err, out)
	}
	src := srv.NewDB(t, "smoke_src", "")
	seed := exec.CommandContext(ctx, bin, "seed", "synthetic:3000")
	seed.Env = append(os.Environ(), "ZMANIM_DATABASE_URL="+src)
	if out, err := seed.CombinedOutput(); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	tgt := srv.NewDB(t, "smoke_tgt", src)
	f, err := os.Open("../../" + DefaultSmokeEndpoints)
	if err != nil {
		t.Fatal(err)
	}
	eps, err := ParseEndpoints(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := Smoke(ctx, SmokeOptions{SourceURL: src, TargetURL: tgt, Endpoints: eps, APIBinary: bin, Out: &out})
	if err != nil {
		t.Fatalf("Smoke on identical databases: %v\n%s", err, out.String())
	}
	if len(res) != len(eps) {
		t.Fatalf("%d results for %d endpoints", len(res), len(eps))
	}
	for _, want := range []string{"same 200 200 GET /api/publisher/profile [user:user_alice]", "same 401 401 GET /api/publisher/profile [none]",
		"same 403 403 GET /api/admin/stats [user:user_alice]", "same 200 200 GET /api/admin/stats [admin:ops]"} {
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), want) {
			t.Fatalf("smoke output lacks %q:\n%s", want, out.String())
		}
	}

	testfix.ExecURL(t, tgt, `UPDATE cities SET name = 'Jerusalem (moved)' WHERE name = 'Jerusalem';
		DELETE FROM publisher_coverage WHERE (publisher_id, city_id) IN (SELECT publisher_id, city_id FROM publisher_coverage LIMIT 1)`)
	out.Reset()
	res, err = Smoke(ctx, SmokeOptions{SourceURL: src, TargetURL: tgt, Endpoints: eps, APIBinary: bin, Out: &out})
	if !errors.Is(err, ErrSmokeDifferent) {
		t.Fatalf("Smoke after changes: err %v, want ErrSmokeDifferent\n%s", err, out.String())
	}
	differ := map[string]bool{}
	for _, r := range res {
		if !r.Same {
			differ[r.Endpoint] = true
		}
	}
	for _, want := range []string{"GET /api/cities?q=jer [none]", "GET /api/publishers [none]", "GET /api/cities?lat=31.77&lon=35.21&limit=5 [none]"} {
		if !differ[want] {
			t.Errorf("%s not reported as different:\n%s", want, out.String())
		}
	}
	if differ["GET /health [none]"] || differ["GET /api/zmanim?lat=31.7683&lon=35.2137&date=2026-03-20 [none]"] {
		t.Errorf("unaffected endpoints reported as different:\n%s", out.String())
	}
}
