package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/shtetl/zmanim-ops/internal/jwtissuer"
	"github.com/shtetl/zmanim-ops/internal/testenv"
	"github.com/shtetl/zmanim-ops/internal/testfix"
)

// These tests call the API the twin's box is serving, on its own port, with the gateway's
// origin-verify header (the box refuses requests without it).

type apiClient struct {
	t      *testing.T
	base   string
	verify string
}

func newAPIClient(t *testing.T) *apiClient {
	base := testenv.Require(t, testenv.APIURL)
	return &apiClient{t: t, base: base, verify: os.Getenv("ZOPS_TEST_ORIGIN_VERIFY")}
}

func (c *apiClient) get(path, token string, withVerify bool) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	if withVerify {
		req.Header.Set("X-Origin-Verify", c.verify)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func TestHealthReportsVersion(t *testing.T) {
	c := newAPIClient(t)
	code, body := c.get("/health", "", true)
	if code != 200 || body["status"] != "ok" || body["version"] == "" || body["db"] != "ok" || body["redis"] != "ok" {
		t.Fatalf("/health = %d %v", code, body)
	}
}

func TestDirectAccessWithoutOriginHeaderIsRefused(t *testing.T) {
	c := newAPIClient(t)
	for _, p := range []string{"/health", "/api/cities?q=jer", "/api/publishers"} {
		if code, _ := c.get(p, "", false); code != http.StatusForbidden {
			t.Errorf("GET %s without the origin-verify header = %d, want 403", p, code)
		}
	}
	c.verify = "wrong-secret"
	if code, _ := c.get("/health", "", true); code != http.StatusForbidden {
		t.Errorf("GET /health with a wrong origin-verify value = %d, want 403", code)
	}
}

func TestZmanimJerusalem(t *testing.T) {
	c := newAPIClient(t)
	code, body := c.get("/api/zmanim?lat=31.778&lon=35.235&date=2026-03-20", "", true)
	if code != 200 {
		t.Fatalf("status %d %v", code, body)
	}
	// NOAA solar calculator, Jerusalem 2026-03-20: sunrise 03:42, sunset 15:50 UTC.
	for k, want := range map[string]string{"sunrise": "2026-03-20T03:42:00Z", "sunset": "2026-03-20T15:50:00Z"} {
		got, err := time.Parse(time.RFC3339, body[k].(string))
		if err != nil {
			t.Fatalf("%s = %v: %v", k, body[k], err)
		}
		w, _ := time.Parse(time.RFC3339, want)
		if d := got.Sub(w); d > 2*time.Minute || d < -2*time.Minute {
			t.Errorf("%s = %s, want %s ± 2 min", k, got, w)
		}
	}
	if code, _ := c.get("/api/zmanim?lat=200&lon=0", "", true); code != 400 {
		t.Errorf("lat=200: status %d, want 400", code)
	}
}

func TestCitiesByNameAndNearest(t *testing.T) {
	c := newAPIClient(t)
	code, body := c.get("/api/cities?q=jerusalem", "", true)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	cities := body["cities"].([]any)
	found := false
	for _, x := range cities {
		found = found || x.(map[string]any)["name"] == "Jerusalem"
	}
	if !found {
		t.Fatalf("q=jerusalem did not find Jerusalem: %v", cities)
	}
	code, body = c.get("/api/cities?lat=31.7767&lon=35.2345&limit=1", "", true)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	near := body["cities"].([]any)[0].(map[string]any)
	dist, _ := near["distance_km"].(float64) // omitted when 0
	if dist > 5 || !strings.Contains(strings.ToLower(near["name"].(string)), "jerusalem") && near["country"] != "IL" && near["country"] != "PS" {
		t.Fatalf("nearest city to the Old City = %v", near)
	}
}

func TestPublisherRoutesNeedAToken(t *testing.T) {
	c := newAPIClient(t)
	good := testfix.Token(t, jwtissuer.KindUser, "")
	expired := testfix.Token(t, jwtissuer.KindExpired, "")
	// A token with the right claims signed by another key.
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	forgedTok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "http://127.0.0.1:17072", "aud": "zmanim-api", "sub": "user_mallory", "exp": time.Now().Add(time.Hour).Unix()})
	forgedTok.Header["kid"] = strings.Split(good, ".")[0] // irrelevant: the signature is wrong
	forged, _ := forgedTok.SignedString(key)
	// alg=none with the good token's claims.
	parts := strings.Split(good, ".")
	none := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
	cases := []struct {
		name, token string
		want        int
	}{
		{"no token", "", 401}, {"expired", expired, 401}, {"wrongly signed", forged, 401},
		{"alg none", none, 401}, {"garbage", "abc.def.ghi", 401}, {"minted", good, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := c.get("/api/publisher/profile", tc.token, true)
			if code != tc.want {
				t.Fatalf("status %d, want %d (%v)", code, tc.want, body)
			}
		})
	}
}

func TestAdminRoutesNeedTheAdminScope(t *testing.T) {
	c := newAPIClient(t)
	if code, _ := c.get("/api/admin/stats", testfix.Token(t, jwtissuer.KindUser, ""), true); code != 403 {
		t.Fatalf("non-admin: status %d, want 403", code)
	}
	code, body := c.get("/api/admin/stats", testfix.Token(t, jwtissuer.KindAdmin, ""), true)
	if code != 200 || body["cities"].(float64) < 1000 {
		t.Fatalf("admin: status %d %v", code, body)
	}
}
